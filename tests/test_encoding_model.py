"""Encoding without a model runs no text encoder; a local model loads once and stays; NaN never reaches JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from factories import vectors
from prompt_helpers import library_with

from sd_embeddings import app as host
from sd_embeddings.encode import loading, text_encoders
from sd_embeddings.encode.encoding import TEST_RANDOM_ENCODERS_ENV, encode_report
from sd_embeddings.records import Family

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def library(tmp_path):
    return library_with(tmp_path / "emb", {"EasyNegative": vectors(2)})


def write_checkpoint(path: Path, nan: bool = False) -> Path:
    """A single-file SD1 checkpoint holding a 1-layer CLIP-L text encoder (random weights, real layout);
    ``nan``: its final layer norm is NaN, as in a checkpoint broken by a bad fp16 conversion."""
    pytest.importorskip("transformers")
    from safetensors.torch import save_file

    from sd_embeddings.encode.checkpoint_weights import SD1_PREFIX

    model = text_encoders.random_encoders(Family.SD1, layers=1, seed=3).encoders[0][1]
    tensors = {SD1_PREFIX + k: v.contiguous() for k, v in model.state_dict().items()}
    if nan:
        (key,) = [k for k in tensors if k.endswith("final_layer_norm.weight")]  # "text_model." in transformers 4
        tensors[key][0] = float("nan")
    save_file(tensors, str(path))
    return path


@pytest.fixture()
def sd1_checkpoint(tmp_path) -> Path:
    return write_checkpoint(tmp_path / "tiny-sd1.safetensors")


def test_without_a_model_no_encoder_is_built(library, monkeypatch) -> None:
    monkeypatch.delenv(TEST_RANDOM_ENCODERS_ENV, raising=False)
    monkeypatch.setattr(loading, "_CACHE", {})
    report = encode_report(library, "a cat, EasyNegative BREAK dog", "EasyNegatve")
    assert loading._CACHE == {}
    assert report["encoded"] is False and report["random_weights"] is False and report["model"] is None
    positive = report["positive"]
    assert positive["shape"] == [1, 154, 768] and positive["checksum"] is None
    assert [(e["keyword"], e["chunk"], e["position"]) for e in report["embeddings"]] == [("EasyNegative", 0, 4)]
    assert report["ti_hashes"].startswith("EasyNegative: ")
    assert [w["kind"] for w in report["warnings"]] == ["near-miss"]


def test_encode_without_a_model_never_imports_transformers(tmp_path) -> None:
    """A fresh process, as a user runs it: the light path must not even import the encoder's library."""
    library_with(tmp_path / "emb", {"EasyNegative": vectors(2)})
    code = ("import sys, json\nfrom sd_embeddings.__main__ import main\n"
            f"rc = main(['encode', 'a cat, EasyNegative', '--folder', {str(tmp_path / 'emb')!r}, '--json'])\n"
            "print(json.dumps({'rc': rc, 'transformers': 'transformers' in sys.modules}), file=sys.stderr)\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    state = json.loads(result.stderr.strip().splitlines()[-1])
    assert state == {"rc": 0, "transformers": False}
    report = json.loads(result.stdout)
    assert report["encoded"] is False and report["positive"]["shape"] == [1, 77, 768]


def test_a_local_model_loads_once_with_progress_and_is_kept(library, sd1_checkpoint, monkeypatch) -> None:
    monkeypatch.setattr(loading, "_CACHE", {})
    loads = []
    real_load = loading.load_encoders
    monkeypatch.setattr(loading, "load_encoders", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    shown = []
    first = host.encode(library, "a cat, EasyNegative", "", "sd1", str(sd1_checkpoint),
                        lambda *a, **k: shown.append(k.get("desc")))
    second = host.encode(library, "a dog, EasyNegative", "", "sd1", str(sd1_checkpoint),
                         lambda *a, **k: shown.append(k.get("desc")))
    assert len(loads) == 1
    assert len(shown) == 1 and "Loading the text encoder" in shown[0]
    assert "checksum" in first and "checksum" in second and "No text encoder ran" not in first
    report = encode_report(library, "a cat", model=str(sd1_checkpoint))
    assert report["encoded"] is True and report["random_weights"] is False and len(loads) == 1
    assert isinstance(report["positive"]["checksum"], float)


def test_page_without_a_model_says_no_encoder_ran(library, monkeypatch) -> None:
    monkeypatch.delenv(TEST_RANDOM_ENCODERS_ENV, raising=False)
    page = host.encode(library, "a cat, EasyNegative", "", "sd1")
    assert "No text encoder ran" in page and "[1, 77, 768]" in page and "checksum" not in page


def test_nan_conditioning_has_a_null_checksum_and_a_warning(library, tmp_path, capsys) -> None:
    from sd_embeddings.__main__ import main

    model = write_checkpoint(tmp_path / "broken.safetensors", nan=True)
    report = encode_report(library, "a cat, EasyNegative", model=str(model))
    assert report["positive"]["checksum"] is None
    (warning,) = [w for w in report["positive"]["warnings"] if w["kind"] == "not-finite"]
    assert "NaN" in warning["message"] and "EasyNegative" in warning["message"]
    assert main(["encode", "a cat", "--folder", str(tmp_path / "emb"), "--model", str(model), "--json"]) == 0
    out, err = capsys.readouterr()
    printed = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert printed["positive"]["checksum"] is None
    assert "warning: (positive) The conditioning contains NaN" in err
