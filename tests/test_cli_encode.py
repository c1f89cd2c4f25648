"""``python -m sd_embeddings encode``: human output and the JSON object."""

from __future__ import annotations

import json

import pytest
from factories import sdxl_vectors, vectors
from prompt_helpers import library_with

from sd_embeddings.__main__ import main

pytest.importorskip("transformers")


pytestmark = pytest.mark.usefixtures("shallow_models")


@pytest.fixture()
def folder(tmp_path):
    library_with(tmp_path / "emb", {"EasyNegative": vectors(2), "xl": sdxl_vectors(2)})
    return tmp_path / "emb"


def test_human_output(folder, capsys) -> None:
    code = main(["encode", "a cat, (EasyNegative:1.2), Easy_Negative", "--negative", "xl",
                 "--folder", str(folder)])
    out = capsys.readouterr().out
    assert code == 0
    assert "Positive prompt: 9/75 tokens, 1 chunk" in out
    assert "<EasyNegative x2>" in out
    assert "EasyNegative  EasyNegative.pt  2 vectors  weight 1.2  positive chunk 0 position 4" in out
    assert "[near-miss]" in out and "[incompatible] (negative)" in out
    assert 'TI hashes: "EasyNegative: ' in out
    assert "positive: shape [1, 77, 768], checksum" in out


def test_json_output_sdxl(folder, capsys) -> None:
    assert main(["encode", "xl BREAK cat", "--family", "sdxl", "--folder", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    positive = report["positive"]
    assert report["family"] == "sdxl" and report["random_weights"] is True
    assert positive["shape"] == [1, 154, 2048] and positive["pooled_shape"] == [1, 1280]
    assert [len(c["tokens"]) for c in positive["chunks"]] == [77, 77]
    assert positive["chunks"][0]["tokens"][:4] == [49406, 0, 0, 49407]
    assert report["embeddings"] == [{"keyword": "xl", "file": "xl.safetensors", "vectors": 2, "weight": 1.0,
                                     "prompt": "positive", "chunk": 0, "position": 1, "part": 0}]
    assert report["ti_hashes"].startswith("xl: ")
    assert isinstance(positive["checksum"], float)


def test_prompt_syntax_parts_and_steps(folder, capsys) -> None:
    code = main(["encode", "a <lora:style:1> [cat:EasyNegative:0.5] AND dog:0.5", "--steps", "10",
                 "--folder", str(folder)])
    out = capsys.readouterr().out
    assert code == 0
    assert "extra networks (not text): <lora:style:1>" in out
    assert "part 0: AND 0, weight 1, steps 1-5 of 10: 'a  cat'" in out
    assert "part 1: AND 0, weight 1, steps 6-10 of 10: 'a  EasyNegative'" in out
    assert "part 2: AND 1, weight 0.5, steps 1-10 of 10: ' dog'" in out
    assert "EasyNegative.pt  2 vectors  weight 1  positive part 1 chunk 0 position 2" in out
    assert "positive part 2: shape [1, 77, 768]" in out


def test_json_steps_and_sdxl_clip_l_skip(folder, capsys) -> None:
    args = ["encode", "xl [cat|dog]", "--family", "sdxl", "--folder", str(folder), "--json", "--steps", "3"]
    assert main(args) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*args, "--sdxl-clip-l-skip"]) == 0
    skipped = json.loads(capsys.readouterr().out)
    assert plain["steps"] == 3
    assert [p["steps"] for p in plain["positive"]["parts"]] == [[[1, 1], [3, 3]], [[2, 2]]]
    assert plain["positive"]["checksum"] != skipped["positive"]["checksum"]


def test_usage_errors(tmp_path, capsys) -> None:
    assert main(["encode", "x", "--folder", str(tmp_path / "nope")]) == 2
    assert main(["encode", "x", "--folder", str(tmp_path), "--model", str(tmp_path / "missing")]) == 2
    assert "error" in capsys.readouterr().err
