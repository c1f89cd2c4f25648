"""ComfyUI's ``embedding:name`` and the "bare keywords trigger embeddings" setting, on real files and the real
CLIP tokenizer (the bundled vocabulary): what is placed, with which weight, what the warnings say, TI hashes."""

from __future__ import annotations

import pytest
from factories import sdxl_vectors, vectors, write_image
from prompt_helpers import library_with

from sd_embeddings.encode.encoding import encode_report
from sd_embeddings.library import common_words
from sd_embeddings.prompt import explicit


@pytest.fixture()
def library(tmp_path):
    library = library_with(tmp_path, {"EasyNegative": vectors(2), "neg/bad-hands-5": vectors(3, seed=1),
                                      "style": vectors(1, seed=2), "bad": vectors(1, seed=3),
                                      "bad hands": vectors(2, seed=4), "xl/xl-only": sdxl_vectors(1)})
    write_image(tmp_path / "picture.png", vectors(1, seed=5), "storedname")
    library.refresh()
    library.hash_all()
    return library


def used(report, prompt="positive"):
    return [(e["keyword"], e["weight"], e["vectors"]) for e in report[prompt]["embeddings"]]


def kinds(report, prompt="positive"):
    return [(w["kind"], w["word"]) for w in report[prompt]["warnings"]]


@pytest.mark.parametrize("text, weight", [
    ("embedding:EasyNegative", 1.0), ("(embedding:EasyNegative:1.2)", 1.2), ("embedding:easynegative", 1.0),
    ("embedding:EasyNegative.pt", 1.0), ("EMBEDDING:EasyNegative,", 1.0), ("a cat, embedding:EasyNegative.", 1.0),
    ("[embedding:EasyNegative]", round(1 / 1.1, 6)), ("embedding: EasyNegative", 1.0),
])
def test_the_explicit_form_places_the_embedding(library, text, weight):
    for bare in (True, False):
        report = encode_report(library, text, conditioning=False, bare_keywords=bare)
        assert used(report) == [("EasyNegative", weight, 2)], (text, bare)
        assert kinds(report) == []


@pytest.mark.parametrize("text", ["embedding:bad-hands-5", "embedding:neg/bad-hands-5", "embedding:neg/bad-hands-5.pt",
                                  "embedding:bad-hands-5.pt", "embedding:NEG/Bad-Hands-5"])
def test_sub_folders_and_extensions_as_comfyui_finds_them(library, text):
    report = encode_report(library, text, conditioning=False, bare_keywords=False)
    assert used(report) == [("bad-hands-5", 1.0, 3)]


def test_embedding_and_colon_are_consumed_with_the_name(library):
    """Only the vectors are in the chunk: no 'embedding' or ':' token is left over."""
    plain = encode_report(library, "a cat", conditioning=False)
    report = encode_report(library, "a cat embedding:EasyNegative", conditioning=False)
    assert report["positive"]["token_count"] == plain["positive"]["token_count"] + 2


def test_the_longest_name_still_wins(library):
    assert used(encode_report(library, "embedding:bad hands", conditioning=False)) == [("bad hands", 1.0, 2)]
    assert used(encode_report(library, "embedding:bad, hands", conditioning=False)) == [("bad", 1.0, 1)]


def test_a_picture_embedding_answers_to_its_stored_name(library):
    assert used(encode_report(library, "embedding:storedname", conditioning=False)) == [("storedname", 1.0, 1)]


def test_bare_keywords_off_leaves_keywords_as_words_with_a_hint(library):
    report = encode_report(library, "EasyNegative, style, embedding:bad-hands-5", conditioning=False,
                           bare_keywords=False)
    assert used(report) == [("bad-hands-5", 1.0, 3)]
    # a common word typed alone is what turning bare keywords off is for: no hint for it
    assert kinds(report) == [("explicit-only", "EasyNegative")]
    assert "write embedding:EasyNegative" in report["warnings"][0]["message"]


def test_a_common_word_used_as_an_embedding_is_named(library):
    report = encode_report(library, "a photo in watercolor style", conditioning=False)
    assert used(report) == [("style", 1.0, 1)]
    assert kinds(report) == [("common-word", "style")]
    assert "'style' is a common English word" in report["warnings"][0]["message"]
    explicit_only = encode_report(library, "a photo, embedding:style", conditioning=False)
    assert kinds(explicit_only) == []  # written explicitly: meant as the embedding


def test_an_explicit_name_of_nothing_is_reported(library):
    report = encode_report(library, "embedding:EasyNegatve, embedding:nothing/here.pt", conditioning=False)
    assert used(report) == []
    assert kinds(report) == [("not-found", "EasyNegatve"), ("not-found", "nothing/here.pt")]
    assert "did you mean embedding:EasyNegative?" in report["warnings"][0]["message"]


def test_an_explicit_name_of_an_incompatible_file_says_why(library):
    report = encode_report(library, "embedding:xl-only", conditioning=False)
    assert used(report) == [] and kinds(report) == [("incompatible", "xl-only")]


def test_ti_hashes_name_embeddings_used_explicitly(library):
    report = encode_report(library, "(embedding:EasyNegative:1.2)", "embedding:neg/bad-hands-5.pt",
                           conditioning=False, bare_keywords=False)
    easy, hands = (library.get(k).shorthash for k in ("EasyNegative", "bad-hands-5"))
    assert report["ti_hashes"] == f"EasyNegative: {easy}, bad-hands-5: {hands}"


def test_prompt_editing_brackets_keep_their_meaning(library):
    """``[embedding:x:0.5]`` is the WebUI's prompt editing (from "embedding" to "x" at half the steps); wrapping
    the name in brackets keeps it one word: ``[(embedding:x):0.5]``."""
    edited = encode_report(library, "[(embedding:EasyNegative):0.5]", conditioning=False, bare_keywords=False)
    assert [e["keyword"] for e in edited["embeddings"]] == ["EasyNegative"]


def test_names_for_lists_every_spelling_once(library):
    entry = library.get("bad-hands-5")
    assert explicit.names_for(entry) == ["bad-hands-5", "bad-hands-5.pt", "neg/bad-hands-5", "neg/bad-hands-5.pt"]
    assert explicit.references("x, (embedding:a/b.pt:1.2), embedding:c. Embedding: d") == ["a/b.pt", "c", "d"]


def test_the_shipped_common_word_list_is_the_one_the_vocabulary_gives():
    from importlib import resources

    vocab = resources.files("sd_embeddings") / "data" / common_words.VOCAB_FILE
    shipped = (resources.files("sd_embeddings") / "data" / common_words.DATA_FILE).read_text(encoding="utf-8")
    assert shipped == common_words.file_text(common_words.build(vocab))
    for word in ("style", "photo", "hands", "art", "masterpiece"):
        assert common_words.is_common_word(word.upper())
    for keyword in ("EasyNegative", "bad-hands-5", "badhandv4", "ng_deep_negative_v1_75t", "unaestheticXL"):
        assert not common_words.is_common_word(keyword)


@pytest.mark.parametrize("name", ["EasyNegative", "bad-hands-5", "v1.5-neg_", "x-", "it's", "a'", "café", "bad hands",
                                  "ng_deep_negative_v1_75t", "1girl", "dots...", "UPPER", "émoji🙂x"])
@pytest.mark.parametrize("folder", ["", "neg", "a b/c-", "ünï", "9"])
def test_ids_built_from_parts_equal_the_whole_texts_ids(tmp_path, name, folder):
    """``SpellingIds`` joins the parts' ids only where CLIP's pieces break anyway; the result is always exactly the
    whole text's ids (checked on names with punctuation at the edges, apostrophes, digits, non-ASCII)."""
    from sd_embeddings.prompt.keywords import SpellingIds, keyword_spellings
    from sd_embeddings.prompt.tokenizer import bundled
    from sd_embeddings.records import Entry, Status

    relpath = f"{folder}/{name}.safetensors" if folder else f"{name}.safetensors"
    entry = Entry(path=str(tmp_path / relpath), root=str(tmp_path), folder=folder, keyword=name,
                  format="safetensors", size=1, mtime_ns=0, status=Status.LOADED)
    spelled = SpellingIds(bundled())
    assert spelled.splits
    for parts in keyword_spellings(entry):
        assert spelled.joined(parts) == tuple(bundled().encode("".join(parts))), parts
