"""``encode_report`` on real-world prompts: extra-network tags, ``AND`` sub-prompts, prompt editing, alternation,
and SDXL's CLIP-L skip."""

from __future__ import annotations

import pytest
from factories import sdxl_vectors, vectors
from prompt_helpers import library_with

from sd_embeddings.encode.encoding import encode_report
from sd_embeddings.records import Family

pytest.importorskip("transformers")


pytestmark = pytest.mark.usefixtures("shallow_models")


@pytest.fixture()
def library(tmp_path):
    return library_with(tmp_path / "emb", {"EasyNegative": vectors(2), "lora": vectors(3, seed=2),
                                           "hands": vectors(4, seed=4)})


def test_extra_network_tags_are_stripped_from_the_positive_prompt_only(library) -> None:
    report = encode_report(library, "a cat <lora:style:0.8>", "<lora:style:0.8> blurry")
    positive, negative = report["positive"], report["negative"]
    assert positive["extra_networks"] == ["<lora:style:0.8>"] and negative["extra_networks"] == []
    assert [part["text"] for part in positive["parts"]] == ["a cat"]
    assert positive["token_count"] == 2  # "a cat": the tag's words never reach the encoder
    assert negative["token_count"] > 5   # the WebUI leaves the negative prompt's tags in: they are words there
    assert positive["embeddings"] == []
    # the tag's word "lora" is also an installed keyword: it is matched in the negative prompt only
    assert [e["keyword"] for e in negative["embeddings"]] == ["lora"]


def test_and_sub_prompts_are_encoded_separately_with_their_weights(library) -> None:
    report = encode_report(library, "a cat, EasyNegative :1.2 AND a dog AND hands")
    parts = report["positive"]["parts"]
    assert [(p["text"], p["and_index"], p["weight"]) for p in parts] == [
        ("a cat, EasyNegative", 0, 1.2), (" a dog", 1, 1.0), (" hands", 2, 1.0)]
    assert [(e["keyword"], e["part"]) for e in report["positive"]["embeddings"]] == [
        ("EasyNegative", 0), ("hands", 2)]
    assert all(p["checksum"] is not None and p["shape"] == [1, 77, 768] for p in parts)
    assert parts[0]["checksum"] != parts[1]["checksum"]
    assert report["positive"]["checksum"] == parts[0]["checksum"]  # the top level is the first part
    assert parts[1]["token_count"] == 2 and "AND" not in str(parts[0]["chunks"])
    assert report["ti_hashes"].count("EasyNegative") == 1 and "hands" in report["ti_hashes"]


def test_negative_prompt_is_not_split_on_and(library) -> None:
    report = encode_report(library, "cat", "ugly AND EasyNegative")
    (part,) = report["negative"]["parts"]
    assert part["text"] == "ugly AND EasyNegative" and part["token_count"] == 2 + 2  # ugly, and, 2 vectors


def test_prompt_editing_reports_each_distinct_text_with_steps(library) -> None:
    report = encode_report(library, "a [cat:EasyNegative:0.25] photo", "[blurry::5]", steps=20)
    positive = report["positive"]
    assert report["steps"] == 20
    assert [(p["text"], p["steps"]) for p in positive["parts"]] == [
        ("a cat photo", [[1, 5]]), ("a EasyNegative photo", [[6, 20]])]
    (used,) = positive["embeddings"]
    assert used["keyword"] == "EasyNegative" and used["part"] == 1  # found inside the edited part
    assert positive["parts"][0]["checksum"] != positive["parts"][1]["checksum"]
    assert [(p["text"], p["steps"]) for p in report["negative"]["parts"]] == [
        ("blurry", [[1, 5]]), ("", [[6, 20]])]
    assert "EasyNegative" in report["ti_hashes"]


def test_alternation_is_reported_once_per_distinct_text(library) -> None:
    report = encode_report(library, "[cat|hands] photo", steps=4)
    parts = report["positive"]["parts"]
    assert [(p["text"], p["steps"]) for p in parts] == [("cat photo", [[1, 1], [3, 3]]),
                                                         ("hands photo", [[2, 2], [4, 4]])]
    assert report["positive"]["token_count"] == 5  # the WebUI counter: the longest text (4 vectors + photo)


def test_steps_change_the_switch_point(library) -> None:
    report = encode_report(library, "[cat:dog:0.5]", steps=10, conditioning=False)
    assert [p["steps"] for p in report["positive"]["parts"]] == [[[1, 5]], [[6, 10]]]


def test_plain_prompt_has_one_part_equal_to_the_prompt(library) -> None:
    report = encode_report(library, "a cat, (EasyNegative:1.2)")
    positive = report["positive"]
    (part,) = positive["parts"]
    assert part["text"] == positive["text"] and part["chunks"] == positive["chunks"]
    assert part["steps"] == [[1, 20]] and part["weight"] == 1.0
    assert positive["embeddings"] == part["embeddings"]


def test_sdxl_clip_l_skip_changes_the_report(tmp_path) -> None:
    library = library_with(tmp_path / "xl", {"xl": sdxl_vectors(2)}, family=Family.SDXL)
    plain = encode_report(library, "a cat, xl", family=Family.SDXL, clip_skip=2)
    skipped = encode_report(library, "a cat, xl", family=Family.SDXL, clip_skip=1, sdxl_clip_l_skip=True)
    same = encode_report(library, "a cat, xl", family=Family.SDXL, clip_skip=2, sdxl_clip_l_skip=True)
    assert plain["positive"]["checksum"] != skipped["positive"]["checksum"]
    assert plain["positive"]["checksum"] == same["positive"]["checksum"]  # skip 2 is SDXL's penultimate layer


def test_standalone_page_shows_each_part_and_the_stripped_tags(library) -> None:
    from sd_embeddings.app import report_html

    page = report_html(encode_report(library, "<lora:a&b:1> [cat:<i>hands:3] AND dog:0.5", steps=10))
    assert "Extra networks (not text): <code>&lt;lora:a&amp;b:1&gt;</code>" in page
    assert "<td>1-3</td><td> cat</td>" in page and "<td>4-10</td><td> &lt;i&gt;hands</td>" in page
    assert "<td>3</td><td>2</td><td>0.5</td><td>1-10</td><td> dog</td>" in page  # part 3, AND 2: from 1
    plain = report_html(encode_report(library, "a cat"))
    assert "<th>part</th>" not in plain and "Extra networks" not in plain
