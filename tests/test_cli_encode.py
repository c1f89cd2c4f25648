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
    assert "EasyNegative  EasyNegative.pt  2 vectors  weight 1.2  positive chunk 1 position 4" in out
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
    assert "part 1: AND 1, weight 1, steps 1-5 of 10: 'a  cat'" in out
    assert "part 2: AND 1, weight 1, steps 6-10 of 10: 'a  EasyNegative'" in out
    assert "part 3: AND 2, weight 0.5, steps 1-10 of 10: ' dog'" in out
    assert "EasyNegative.pt  2 vectors  weight 1  positive part 2 chunk 1 position 2" in out
    assert "positive part 3: shape [1, 77, 768]" in out


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


def usage_error(args: list[str], capsys) -> str:
    """Runs ``main(args)``; the run must end with exit 2 and exactly one line on stderr, no traceback."""
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(("family", "limit"), [("sd1", 12), ("sdxl", 12), ("sd2", 12)])
def test_clip_skip_out_of_range_names_the_value_and_the_range(folder, capsys, family, limit) -> None:
    err = usage_error(["encode", "a cat", "--folder", str(folder), "--family", family, "--clip-skip", "20"], capsys)
    assert "clip skip 20 is out of range" in err and f"use 1 to {limit}" in err


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_clip_skip_below_one_is_refused(folder, capsys, value) -> None:
    err = usage_error(["encode", "a cat", "--folder", str(folder), "--clip-skip", value], capsys)
    assert "--clip-skip" in err and value in err


def test_steps_zero_is_refused(folder, capsys) -> None:
    err = usage_error(["encode", "[a:b:3] cat", "--folder", str(folder), "--steps", "0"], capsys)
    assert "--steps" in err and "use 1 or more" in err


@pytest.mark.parametrize("command", ["encode", "scan", "inspect"])
def test_unknown_family_says_which_are_known(tmp_path, capsys, command) -> None:
    target = {"encode": ["a cat", "--folder", str(tmp_path)], "scan": [str(tmp_path)],
              "inspect": [str(tmp_path / "x.pt")]}[command]
    err = usage_error([command, *target, "--family", "sd3"], capsys)
    assert "unknown model family 'sd3'; expected sd1, sd2 or sdxl" in err and "invalid" not in err


def test_without_a_model_the_report_says_so_and_numbers_from_one(folder, capsys, monkeypatch) -> None:
    monkeypatch.delenv("SD_EMBEDDINGS_TEST_RANDOM_ENCODERS")
    assert main(["encode", "a cat BREAK EasyNegative", "--folder", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "Model: sd1, none (give --model PATH for conditioning values" in out
    assert "  chunk 1: 2/75  a cat" in out and "  chunk 2: 2/75  <EasyNegative x2>" in out
    assert "EasyNegative.pt  2 vectors  weight 1  positive chunk 2 position 1" in out
    assert "positive: shape [1, 154, 768], checksum not computed (no --model)" in out


def test_page_and_cli_number_chunks_and_parts_alike(folder, capsys, monkeypatch) -> None:
    """One convention, from 1: the page's Encode report and the CLI name the same chunk and part."""
    from sd_embeddings import app as host

    monkeypatch.delenv("SD_EMBEDDINGS_TEST_RANDOM_ENCODERS")
    prompt = "[a cat BREAK EasyNegative:dog:0.5]"
    assert main(["encode", prompt, "--folder", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert main(["encode", prompt, "--folder", str(folder)]) == 0
    out = capsys.readouterr().out
    page = host.report_html(report)
    assert "positive part 1 chunk 2 position 1" in out and "part 1: AND 1, weight 1, steps 1-10" in out
    assert "<tr><td>EasyNegative</td><td>EasyNegative.pt</td><td>2</td><td>1.0</td><td>2</td></tr>" in page
    assert "<tr><td>1</td><td>1</td><td>1.0</td><td>1-10</td>" in page
