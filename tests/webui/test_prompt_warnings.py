"""Generation-info warnings from the core diagnostics. Fakes: none of the WebUI (the adapter function takes the
library and family; the bundled CLIP tokenizer is the real one), so these run on the library alone."""

from __future__ import annotations

import logging

import pytest
from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors

from sd_embeddings.library import Library
from sd_embeddings.records import Family
from sd_embeddings.webui import prompt_warnings


@pytest.fixture
def library(tmp_path):
    write_a1111_pt(tmp_path / "EasyNegative.pt", vectors(2))
    write_safetensors(tmp_path / "xl" / "xlstyle.safetensors", sdxl_vectors(1))
    (tmp_path / "broken.pt").write_bytes(b"not a pickle at all")
    library = Library([tmp_path], family=Family.SD1, background_hashing=False)
    library.refresh()
    return library


def test_same_warnings_as_the_core_one_line_each(library):
    texts = ["a XLSTYLE photo <lora:Easy_Negative:0.8> AND broken:0.5", "Easy_Negative, (EasyNegative:1.2)",
             "a XLSTYLE photo <lora:Easy_Negative:0.8> AND broken:0.5", "", "[cat:EasyNegatve:0.4] AND dog"]
    lines = prompt_warnings.generation_warnings(library, Family.SD1, texts)
    assert all(line.startswith("Textual inversion: ") for line in lines)
    assert len(lines) == 4, lines
    assert "'xlstyle' stays plain text: xl/xlstyle.safetensors does not fit this model" in lines[0]
    assert "SDXL" in lines[0]
    assert "'broken' stays plain text: broken.pt could not be loaded" in lines[1]
    assert "'Easy_Negative' stays plain text; did you mean the embedding 'EasyNegative'" in lines[2]
    assert "'EasyNegatve'" in lines[3] and "one letter off" in lines[3]
    assert prompt_warnings.generation_warnings(library, Family.SD1, ["EasyNegative, <lora:xlstyle:1>"]) == []


def test_cached_per_library_version_and_family(library, tmp_path, monkeypatch):
    calls: list[str] = []
    compute = prompt_warnings._compute
    monkeypatch.setattr(prompt_warnings, "_compute", lambda lib, fam, text: calls.append(text) or
                        compute(lib, fam, text))
    first = prompt_warnings.generation_warnings(library, Family.SD1, ["Easy_Negative cat", "Easy_Negative cat"])
    assert prompt_warnings.generation_warnings(library, Family.SD1, ["Easy_Negative cat"]) == first
    assert calls == ["Easy_Negative cat"]
    write_a1111_pt(tmp_path / "Easy_Negative.pt", vectors(1))
    library.refresh()
    assert prompt_warnings.generation_warnings(library, Family.SD1, ["Easy_Negative cat"]) == []
    (xl,) = prompt_warnings.generation_warnings(library, Family.SDXL, ["Easy_Negative cat"])
    assert "'Easy_Negative' stays plain text" in xl and "model is SDXL" in xl
    assert calls == ["Easy_Negative cat"] * 3


def test_too_long_says_what_the_webui_does(tmp_path):
    write_a1111_pt(tmp_path / "huge.pt", vectors(80))
    library = Library([tmp_path], family=Family.SD1, background_hashing=False)
    library.refresh()
    (line,) = prompt_warnings.generation_warnings(library, Family.SD1, ["huge"])
    assert line.startswith("Textual inversion: 'huge' has more than the 75 vectors") and "WebUI" in line


def test_never_raises_into_the_generation(library, monkeypatch, caplog):
    def broken(*_args):
        raise RuntimeError("tokenizer exploded")

    monkeypatch.setattr(prompt_warnings, "warnings_for", broken)
    with caplog.at_level(logging.ERROR, logger="sd_embeddings"):
        assert prompt_warnings.generation_warnings(library, Family.SD1, ["some new prompt"]) == []
    assert "tokenizer exploded" in caplog.text
