"""The CLI as users run it: ``python -m sd_embeddings scan|inspect|convert`` in a real subprocess."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from factories import sdxl_vectors, vectors, write_a1111_pt, write_image, write_safetensors

from sd_embeddings.formats import decoding as formats

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path | None = None, home: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(home or cwd or ROOT / ".pytest-cache-home")}
    return subprocess.run([sys.executable, "-m", "sd_embeddings", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    folder = tmp_path / "embeddings"
    write_a1111_pt(folder / "EasyNegative.pt", vectors(8), legacy=True)
    write_safetensors(folder / "negative" / "bad-hands-5.safetensors", {"emb_params": vectors(2)})
    write_safetensors(folder / "xl" / "negativeXL.safetensors", sdxl_vectors(4))
    write_image(folder / "style.png", vectors(3), "my-style", carrier="pixels")
    (folder / "evil.pt").write_bytes(pickle.dumps({"string_to_param": {"*": os.system}}, protocol=2))
    (folder / "truncated.safetensors").write_bytes(b"\x40\x00\x00\x00\x00\x00\x00\x00{")
    return folder


def test_scan_lists_every_file_and_exits_1_on_bad_files(mixed, tmp_path):
    result = cli("scan", str(mixed), "--family", "sd1", home=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["KEYWORD", "FAMILY", "VECTORS", "STATUS"]
    row = {line.split()[0]: line for line in lines[1:-1]}
    assert set(row) == {"EasyNegative", "bad-hands-5", "negativeXL", "my-style", "evil", "truncated"}
    assert "loaded" in row["EasyNegative"] and "8" in row["EasyNegative"]
    assert "incompatible" in row["negativeXL"] and "model is SD1.5" in row["negativeXL"]
    assert "unsafe" in row["evil"] and "posix.system" in row["evil"]
    assert "corrupt" in row["truncated"]
    assert lines[-1].startswith("Loaded a total of 3 textual inversion embeddings. Skipped 1.")


def test_scan_json_schema(mixed, tmp_path):
    result = cli("scan", str(mixed), "--json", "--hashes", home=tmp_path)
    assert result.returncode == 1
    items = {item["path"]: item for item in json.loads(result.stdout)}
    assert "Loaded a total of" in result.stderr
    item = items["negative/bad-hands-5.safetensors"]
    required = {"keyword", "path", "format", "family", "vectors", "status", "reason", "sha256"}
    assert required <= set(item)
    assert (item["keyword"], item["family"], item["vectors"], item["status"]) == ("bad-hands-5", "sd1", 2, "loaded")
    assert len(item["sha256"]) == 64
    assert items["xl/negativeXL.safetensors"]["family"] == "sdxl"
    assert items["evil.pt"]["family"] == "unknown" and items["evil.pt"]["status"] == "unsafe"


def test_scan_clean_folder_exits_0_and_missing_folder_exits_2(tmp_path):
    write_safetensors(tmp_path / "ok" / "a.safetensors", {"emb_params": vectors(1)})
    assert cli("scan", str(tmp_path / "ok"), home=tmp_path).returncode == 0
    missing = cli("scan", str(tmp_path / "nope"), home=tmp_path)
    assert missing.returncode == 2 and "not a folder" in missing.stderr
    assert cli("frobnicate", home=tmp_path).returncode == 2


def test_inspect_reports_norms_and_bad_vectors(tmp_path):
    vec = vectors(3)
    vec[2] = 0
    write_a1111_pt(tmp_path / "e.pt", vec)
    result = cli("inspect", str(tmp_path / "e.pt"), "--json", home=tmp_path)
    report = json.loads(result.stdout)
    assert result.returncode == 0
    (tensor,) = [t for t in report["tensors"] if t["shape"] == [3, 768]]
    assert tensor["zero_vectors"] == 1 and tensor["nan_inf_vectors"] == 0
    assert report["step"] == 100 and report["family"] == "sd1" and len(report["sha256"]) == 64
    vec[0, 0] = float("inf")
    write_safetensors(tmp_path / "inf.safetensors", {"emb_params": vec})
    bad = cli("inspect", str(tmp_path / "inf.safetensors"), home=tmp_path)
    assert bad.returncode == 1 and "NaN/Inf vectors 1" in bad.stdout and "corrupt" in bad.stdout


def test_convert_round_trip_and_no_overwrite(tmp_path):
    vec = vectors(4)
    write_a1111_pt(tmp_path / "in" / "legacy.pt", vec, legacy=True, parameter_dict=True)
    write_image(tmp_path / "in" / "pic.png", vec, "stored", carrier="pixels")
    out = tmp_path / "out"
    result = cli("convert", str(tmp_path / "in" / "legacy.pt"), str(tmp_path / "in" / "pic.png"),
                 "--out", str(out), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert torch.equal(formats.decode_file(out / "legacy.safetensors").vec, vec)
    back = formats.decode_file(out / "pic.safetensors")
    assert back.name == "stored" and torch.allclose(back.vec, vec)
    again = cli("convert", str(tmp_path / "in" / "legacy.pt"), "--out", str(out), home=tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr
    assert cli("convert", str(tmp_path / "in" / "legacy.pt"), "--out", str(out), "--force",
               home=tmp_path).returncode == 0
    to_png = cli("convert", str(out / "legacy.safetensors"), "--to", "png-pixels", "--out", str(tmp_path / "png"),
                 home=tmp_path)
    assert to_png.returncode == 0 and torch.allclose(formats.decode_file(tmp_path / "png" / "legacy.png").vec, vec)
