"""``embedding:name`` and the bare-keywords setting inside the WebUI, against the fake ``modules`` (conftest).

Faked: the WebUI's model and prompt path (``FakeCond``: its tokenizer splits on spaces and commas only, so a whole
``embedding:name`` word is one token, and its ``tokenize_line`` follows the WebUI's algorithm without attention
parsing, so weights are covered by the core's tests with the real CLIP tokenizer), ``processing``, ``shared.opts``
(the setting is read from ``opts.data``, as the WebUI stores it) and ``p.comment``. Real: the files, the library, our
database and its lookups, the generation record, ``TI hashes`` and the warnings.
"""

from __future__ import annotations

import pytest
from factories import vectors, write_a1111_pt, write_safetensors
from test_entry import generate, registered  # noqa: F401  (the fixture)

from sd_embeddings.webui import entry


@pytest.fixture
def files(registered):  # noqa: F811
    webui = registered.webui
    write_a1111_pt(webui.folder / "EasyNegative.pt", vectors(2))
    write_safetensors(webui.folder / "neg" / "bad-hands-5.safetensors", {"emb_params": vectors(3, seed=1)})
    write_a1111_pt(webui.folder / "style.pt", vectors(1, seed=2))
    webui.load_model(768)
    entry.database().load_textual_inversion_embeddings()
    return webui


def placed(webui, text: str) -> list[str]:
    chunks = webui.modules["modules.shared"].sd_model.cond_stage_model.tokenize_line(text)[0]
    return [fix.embedding.name for chunk in chunks for fix in chunk.fixes]


@pytest.mark.parametrize("text", ["embedding:EasyNegative", "embedding:easynegative", "embedding:EasyNegative.pt",
                                  "a cat, embedding:EasyNegative, b"])
def test_the_explicit_form_matches_in_the_webuis_chunker(files, text):
    assert placed(files, text) == ["EasyNegative"]


@pytest.mark.parametrize("text", ["embedding:bad-hands-5", "embedding:neg/bad-hands-5",
                                  "embedding:neg/bad-hands-5.safetensors", "embedding:bad-hands-5.safetensors"])
def test_sub_folder_and_extension_spellings(files, text):
    assert placed(files, text) == ["bad-hands-5"]


def test_explicit_names_stay_out_of_what_other_extensions_read(files):
    db = entry.database()
    assert sorted(db.word_embeddings) == ["EasyNegative", "bad-hands-5", "style"]
    first_ids = [ids for bucket in db.ids_lookup.values() for ids, _ in bucket]
    assert len(first_ids) == 3  # one bare keyword each; the explicit spellings live in db.explicit


def test_bare_keywords_off_keeps_the_names_listed_and_fires_only_the_explicit_form(files):
    files.opts.data["sd_embeddings_bare_keywords"] = False
    db = entry.database()
    version = db.version
    entry.apply_bare_keywords_setting()
    assert db.version > version  # cached conditioning made with bare keywords is not reused
    assert sorted(db.word_embeddings) == ["EasyNegative", "bad-hands-5", "style"]  # tag autocomplete lists them
    assert placed(files, "EasyNegative, style") == []
    assert placed(files, "embedding:EasyNegative, embedding:style") == ["EasyNegative", "style"]
    files.opts.data["sd_embeddings_bare_keywords"] = True
    entry.apply_bare_keywords_setting()
    assert placed(files, "EasyNegative, style") == ["EasyNegative", "style"]


def test_a_generation_hashes_explicit_embeddings_and_warns_as_the_host_does(files):
    files.opts.data["sd_embeddings_bare_keywords"] = False
    entry.apply_bare_keywords_setting()
    p = generate(files, "StableDiffusionProcessingTxt2Img", ["a cat, embedding:style"],
                 ["embedding:neg/bad-hands-5, EasyNegative, style, embedding:nothere"])
    db = entry.database()
    hashes = p.extra_generation_params["TI hashes"]
    assert f"style: {db.word_embeddings['style'].shorthash}" in hashes
    assert f"bad-hands-5: {db.word_embeddings['bad-hands-5'].shorthash}" in hashes and "EasyNegative" not in hashes
    assert any("'EasyNegative' stays plain text: bare keywords are off" in c for c in p.comments)
    assert any("'embedding:nothere' names no embedding file" in c for c in p.comments)
    assert not any("'style'" in c for c in p.comments)  # a common word left alone is what the setting is for


def test_a_common_word_fired_bare_is_named_under_the_generation(files):
    p = generate(files, "StableDiffusionProcessingTxt2Img", ["a cat in watercolor style"], [""])
    assert "style: " in p.extra_generation_params["TI hashes"]
    assert any("'style' is a common English word" in c for c in p.comments)


def test_a_duplicates_own_name_means_the_keywords_file_in_the_webui_too(files):
    """``old/EasyNegative.safetensors`` loses the keyword to the top-level ``EasyNegative.pt``; its own names
    place the keyword's embedding and the generation says so, as on the standalone host."""
    write_safetensors(files.folder / "old" / "EasyNegative.safetensors", {"emb_params": vectors(4, seed=7)})
    db = entry.database()
    db.load_textual_inversion_embeddings(force_reload=True)
    for text in ("embedding:old/EasyNegative.safetensors", "embedding:EasyNegative.safetensors",
                 "embedding:old/EasyNegative"):
        assert placed(files, text) == ["EasyNegative"], text
    p = generate(files, "StableDiffusionProcessingTxt2Img", ["a cat, embedding:old/EasyNegative"], [""])
    assert p.extra_generation_params["TI hashes"] == f"EasyNegative: {db.word_embeddings['EasyNegative'].shorthash}"
    assert any("'embedding:old/EasyNegative' is old/EasyNegative.safetensors, a duplicate" in c for c in p.comments)


def test_the_explicit_index_is_built_when_a_prompt_may_use_it_not_at_each_refresh(webui):
    """Building it costs a tokenizer lookup per spelling (34,000 at 10,000 files), on every change of the files.
    With a tokenizer that cuts ``embedding`` off what follows it (the bundled CLIP tokenizer stands in for the
    model's), refreshes build nothing; the first prompt holding ``embedding:`` builds it, once per change."""
    from sd_embeddings.prompt.tokenizer import bundled

    for i in range(5):
        write_a1111_pt(webui.folder / f"emb{i}.pt", vectors(1, seed=i))
    model, clip = webui.load_model(768), bundled()
    model.cond_stage_model.tokenize = lambda texts: [clip.encode(text) for text in texts]
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    write_a1111_pt(webui.folder / "emb9.pt", vectors(2, seed=9))
    db.load_textual_inversion_embeddings(force_reload=True)
    assert db.explicit.builds == 0
    assert placed(webui, "a cat, emb3, more") == ["emb3"] and db.explicit.builds == 0
    assert placed(webui, "a cat, embedding:emb9") == ["emb9"] and db.explicit.builds == 1
    assert placed(webui, "embedding:emb2 and embedding:emb4.pt") == ["emb2", "emb4"] and db.explicit.builds == 1
    (webui.folder / "emb9.pt").unlink()
    db.load_textual_inversion_embeddings(force_reload=True)
    assert placed(webui, "embedding:emb9, embedding:emb1") == ["emb1"] and db.explicit.builds == 2
