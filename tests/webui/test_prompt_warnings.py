"""Generation-info warnings from what the WebUI encoded. Fakes (conftest): the WebUI's chunker and tokenizer give the
line records, as the wrapped ``tokenize_line`` does in a generation; the library and files are real."""

from __future__ import annotations

import logging

import pytest
from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors

from sd_embeddings.webui import prompt_warnings, usage


@pytest.fixture
def encoded(webui):
    """``encode(*texts)`` -> warning lines, each text through the fake WebUI's ``tokenize_line`` once."""
    write_a1111_pt(webui.folder / "EasyNegative.pt", vectors(2))
    write_safetensors(webui.folder / "xl" / "xlstyle.safetensors", sdxl_vectors(1))
    (webui.folder / "broken.pt").write_bytes(b"not a pickle at all")
    model = webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    cond = model.cond_stage_model

    def encode(*texts: str) -> list[str]:
        records = [usage.line_record(text, cond.tokenize_line(text)[0], cond.id_end) for text in texts]
        return prompt_warnings.generation_warnings(db.library, db.model_family, records, db.keyword_ids)

    encode.db = db
    return encode


def test_same_warnings_as_the_core_one_line_each(encoded):
    lines = encoded("a xlstyle photo", "broken , x", "Easy_Negative, EasyNegative", "EasyNegatve dog",
                    "a xlstyle photo")
    assert all(line.startswith("Textual inversion: ") for line in lines)
    assert len(lines) == 4, lines
    assert "'xlstyle' stays plain text: xl/xlstyle.safetensors does not fit this model" in lines[0]
    assert "SDXL" in lines[0]
    assert "'broken' stays plain text: broken.pt could not be loaded" in lines[1]
    assert "'Easy_Negative' stays plain text; did you mean the embedding 'EasyNegative'" in lines[2]
    assert "'EasyNegatve'" in lines[3] and "one letter off" in lines[3]
    assert encoded("EasyNegative, cat") == []


def test_an_applied_embedding_is_not_reported_even_if_its_name_looks_unusable(encoded, webui):
    """The WebUI placed the two-word embedding 'xlstyle photo' (longest match first): its rows are not plain text,
    so the unusable SDXL keyword 'xlstyle' inside it is not reported, while a lone 'xlstyle' still is."""
    write_a1111_pt(webui.folder / "xlstyle photo.pt", vectors(1))
    encoded.db.load_textual_inversion_embeddings(force_reload=True)
    assert encoded("a xlstyle photo") == []
    (line,) = encoded("a xlstyle cat")
    assert "'xlstyle' stays plain text" in line


def test_keyword_indexes_are_built_again_only_when_an_unusable_file_or_the_model_changes(encoded, webui, monkeypatch):
    """Every generation asked for the unusable files' keyword index, and built it again: 0.15 s a generation at
    10,000 files. Now it is built when an unusable file, the family, the setting or the model changes, only then."""
    built = []

    class Counted(prompt_warnings.KeywordIndex):
        def __init__(self, *args, **kwargs) -> None:
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(prompt_warnings, "KeywordIndex", Counted)
    listed = []
    real_unusable = prompt_warnings.unusable_entries
    monkeypatch.setattr(prompt_warnings, "unusable_entries", lambda *a: listed.append(1) or real_unusable(*a))
    for _ in range(3):
        (line,) = encoded("a xlstyle cat")
    assert "'xlstyle' stays plain text" in line and len(built) == 1
    assert len(listed) == 1  # an unchanged library is not even walked again
    write_a1111_pt(webui.folder / "sub" / "working.pt", vectors(1, seed=7))  # a file that works: nothing to redo
    encoded.db.load_textual_inversion_embeddings(force_reload=True)
    assert "working" in encoded.db.word_embeddings and encoded("a xlstyle cat") == [line] and len(built) == 1
    write_safetensors(webui.folder / "xl" / "xlother.safetensors", sdxl_vectors(1, seed=5))
    encoded.db.load_textual_inversion_embeddings(force_reload=True)
    (line,) = encoded("a xlother cat")  # the new file's name is known at once
    assert "'xlother' stays plain text" in line and len(built) == 2
    prompt_warnings.generation_warnings(encoded.db.library, encoded.db.model_family, [], encoded.db.keyword_ids,
                                        model=object())  # another model: its tokenizer may give other ids
    assert len(built) == 3


def test_too_long_says_what_the_webui_does(webui):
    write_a1111_pt(webui.folder / "hugeemb.pt", vectors(80))
    model = webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    cond = model.cond_stage_model
    record = usage.line_record("hugeemb", cond.tokenize_line("hugeemb")[0], cond.id_end)
    (line,) = prompt_warnings.generation_warnings(db.library, db.model_family, [record], db.keyword_ids)
    assert line.startswith("Textual inversion: 'hugeemb' has more than the 75 vectors") and "WebUI" in line


def test_never_raises_into_the_generation(encoded, monkeypatch, caplog):
    def broken(*_args):
        raise RuntimeError("diagnostics exploded")

    monkeypatch.setattr(prompt_warnings, "warnings_for", broken)
    with caplog.at_level(logging.ERROR, logger="sd_embeddings"):
        assert encoded("some new prompt") == []
    assert "diagnostics exploded" in caplog.text
