"""The CLI: ``python -m sd_embeddings scan|inspect|convert|samples|serve``.

``cli`` runs a real subprocess (exit status, logging set-up, as users run it); ``run`` calls the same ``main`` in
this process, which is the same code without a new interpreter importing torch for every call (seconds each)."""

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

from sd_embeddings.__main__ import main
from sd_embeddings.formats import decoding as formats

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path | None = None, home: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(home or cwd or ROOT / ".pytest-cache-home")}
    return subprocess.run([sys.executable, "-m", "sd_embeddings", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.fixture
def run(capsys, monkeypatch, tmp_path):
    """``run(*argv)`` -> CompletedProcess from ``main(argv)`` in this process, the cache inside tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    monkeypatch.delenv("SD_EMBEDDINGS_CACHE_DIR", raising=False)

    def call(*args: str, **_: object) -> subprocess.CompletedProcess:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse: --version, usage errors
            code = e.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return call


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


def test_scan_json_schema(mixed, tmp_path, run):
    result = run("scan", str(mixed), "--json", "--hashes", home=tmp_path)
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


def test_scan_clean_folder_exits_0_and_missing_folder_exits_2(tmp_path, run):
    write_safetensors(tmp_path / "ok" / "a.safetensors", {"emb_params": vectors(1)})
    assert run("scan", str(tmp_path / "ok"), home=tmp_path).returncode == 0
    missing = run("scan", str(tmp_path / "nope"), home=tmp_path)
    assert missing.returncode == 2 and "not a folder" in missing.stderr
    assert run("frobnicate", home=tmp_path).returncode == 2


def test_inspect_reports_norms_and_bad_vectors(tmp_path, run):
    vec = vectors(3)
    vec[2] = 0
    write_a1111_pt(tmp_path / "e.pt", vec)
    result = run("inspect", str(tmp_path / "e.pt"), "--json", home=tmp_path)
    report = json.loads(result.stdout)
    assert result.returncode == 0
    (tensor,) = [t for t in report["tensors"] if t["shape"] == [3, 768]]
    assert tensor["zero_vectors"] == 1 and tensor["nan_inf_vectors"] == 0
    assert report["step"] == 100 and report["family"] == "sd1" and len(report["sha256"]) == 64
    vec[0, 0] = float("inf")
    write_safetensors(tmp_path / "inf.safetensors", {"emb_params": vec})
    bad = run("inspect", str(tmp_path / "inf.safetensors"), home=tmp_path)
    assert bad.returncode == 1 and "NaN/Inf vectors 1" in bad.stdout and "corrupt" in bad.stdout


def test_convert_round_trip_and_no_overwrite(tmp_path, run):
    vec = vectors(4)
    write_a1111_pt(tmp_path / "in" / "legacy.pt", vec, legacy=True, parameter_dict=True)
    write_image(tmp_path / "in" / "pic.png", vec, "stored", carrier="pixels")
    out = tmp_path / "out"
    result = run("convert", str(tmp_path / "in" / "legacy.pt"), str(tmp_path / "in" / "pic.png"),
                 "--out", str(out), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert torch.equal(formats.decode_file(out / "legacy.safetensors").vec, vec)
    back = formats.decode_file(out / "pic.safetensors")
    assert back.name == "stored" and torch.allclose(back.vec, vec)
    again = run("convert", str(tmp_path / "in" / "legacy.pt"), "--out", str(out), home=tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr
    assert run("convert", str(tmp_path / "in" / "legacy.pt"), "--out", str(out), "--force",
               home=tmp_path).returncode == 0
    to_png = run("convert", str(out / "legacy.safetensors"), "--to", "png-pixels", "--out", str(tmp_path / "png"),
                 home=tmp_path)
    assert to_png.returncode == 0 and torch.allclose(formats.decode_file(tmp_path / "png" / "legacy.png").vec, vec)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_version(tmp_path, run):
    from sd_embeddings import __version__

    result = run("--version", home=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"sd-embeddings {__version__}"


def test_verbose_after_the_sub_command_logs_every_file(mixed, tmp_path):
    for args in (("scan", "-v", str(mixed)), ("-v", "scan", str(mixed))):
        result = cli(*args, home=tmp_path)
        assert result.returncode == 1
        read = [line for line in result.stderr.splitlines() if line.startswith("INFO Read ")]
        assert len(read) == 6, result.stderr
        assert any("EasyNegative.pt: loaded" in line for line in read)
    quiet = cli("scan", str(mixed), home=tmp_path)
    assert "INFO" not in quiet.stderr


def test_inspect_says_nan_not_zero(tmp_path, run):
    vec = vectors(3)
    vec[1] = float("nan")
    vec[2] = 0
    write_safetensors(tmp_path / "nan.safetensors", {"emb_params": vec})
    result = run("inspect", str(tmp_path / "nan.safetensors"), home=tmp_path)
    assert "NaN/Inf vectors 1, zero 1" in result.stdout
    assert "NaN/Inf, 0" in result.stdout  # the norms: row 1 is NaN, row 2 is zero
    report = json.loads(run("inspect", str(tmp_path / "nan.safetensors"), "--json", home=tmp_path).stdout)
    (tensor,) = report["tensors"]
    assert (tensor["nan_inf_vectors"], tensor["zero_vectors"]) == (1, 1) and tensor["norms"][1] is None


def test_inspect_and_scan_give_an_empty_file_the_same_reason(tmp_path, run):
    (tmp_path / "empty.pt").write_bytes(b"")
    inspected = json.loads(run("inspect", str(tmp_path / "empty.pt"), "--json", home=tmp_path).stdout)
    (scanned,) = json.loads(run("scan", str(tmp_path), "--json", home=tmp_path).stdout)
    assert inspected["reason"] == scanned["reason"] and inspected["reason"].startswith("empty file (0 bytes)")
    assert inspected["status"] == scanned["status"] == "not-an-embedding"


def test_samples_into_a_file_is_one_line(tmp_path, run):
    (tmp_path / "some-file.pt").write_bytes(b"x")
    result = run("samples", str(tmp_path / "some-file.pt"), home=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert "some-file.pt is a file, not a folder" in one_line_error(result)


@pytest.fixture
def serve_calls(monkeypatch):
    """``serve`` runs in-process with the server itself replaced by a recorder, so a wrongly accepted start
    returns at once instead of serving forever; everything before it (checks, binding, the URL line) is real."""
    pytest.importorskip("gradio")
    from sd_embeddings import app

    calls = []
    monkeypatch.setattr(app, "serve", lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


def test_serve_a_file_is_one_line_before_any_url(tmp_path, capsys, serve_calls):
    from sd_embeddings.__main__ import main

    (tmp_path / "some-file.pt").write_bytes(b"x")
    assert main(["serve", str(tmp_path / "some-file.pt"), "--port", "0"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and serve_calls == []
    assert len(err.strip().splitlines()) == 1 and "some-file.pt is a file, not a folder" in err


def test_serve_on_a_busy_port_says_which_port_to_try(tmp_path, capsys, serve_calls):
    import socket

    from sd_embeddings.__main__ import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = main(["serve", str(tmp_path / "emb"), "--port", str(port)])
    out, err = capsys.readouterr()
    assert code != 0 and out == "" and serve_calls == []
    assert len(err.strip().splitlines()) == 1 and f"port {port} is in use on 127.0.0.1; try --port " in err
    suggested = int(err.split("--port ")[1].split()[0])
    with socket.socket() as check:
        check.bind(("127.0.0.1", suggested))  # the suggested port is free


def test_serve_prints_the_url_after_binding(tmp_path, capsys, serve_calls):
    from sd_embeddings.__main__ import main

    assert main(["serve", str(tmp_path / "emb"), "--port", "0"]) == 0
    out, _ = capsys.readouterr()
    ((_, kwargs),) = serve_calls
    assert kwargs["port"] > 0 and out.startswith(f"Textual Inversion tab: http://127.0.0.1:{kwargs['port']}/")
    assert kwargs["sock"].fileno() == -1  # handed to the server, closed when it stops


def test_cache_dir_env_moves_the_scan_cache(mixed, tmp_path, run, monkeypatch):
    moved = tmp_path / "elsewhere"
    monkeypatch.setenv("SD_EMBEDDINGS_CACHE_DIR", str(moved))
    assert run("scan", str(mixed), "--json").returncode == 1
    cached = json.loads((moved / "hashes.json").read_text())["columns"]["path"]
    assert str(mixed / "EasyNegative.pt") in cached
    assert not (tmp_path / "cache-home" / "sd-embeddings").exists()
