"""Round 2 of the outside attack, names: a keyword claimed from inside a file (F5) and untrusted text reaching
the terminal or a JSON reader (F7, F8). Every input is written here, at test time: file names made of raw bytes
(ESC sequences, bytes that are not UTF-8), names stored inside files (a lone surrogate, ESC, a bidi override)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from factories import vectors, write_image, write_safetensors

from sd_embeddings.__main__ import main
from sd_embeddings.formats import decoding
from sd_embeddings.library import Library
from sd_embeddings.records import Family, Status

ROOT = Path(__file__).resolve().parents[2]
ESC_NAME = b"caf\xe9\x1b[31m"


def scanned(folder: Path, family: Family | None = None) -> Library:
    library = Library([folder], family=family, background_hashing=False)
    library.refresh()
    return library


def named_safetensors(path: Path | bytes, name: str) -> None:
    """A valid 1 x 768 safetensors file whose ``__metadata__`` name is ``name`` (JSON escapes keep it intact)."""
    header = json.dumps({"__metadata__": {"name": name},
                         "emb_params": {"dtype": "F32", "shape": [1, 768], "data_offsets": [0, 3072]}}).encode()
    raw = struct.pack("<Q", len(header)) + header + vectors(1).numpy().tobytes()
    with open(path, "wb") as handle:
        handle.write(raw)


# -- F5: a name stored inside a file never takes the keyword of a file named so --------------------------------


@pytest.mark.parametrize("where", ["same folder", "claimant shallower", "claimant fits the model"])
def test_stored_name_never_beats_a_file_named_after_the_keyword(tmp_path: Path, where: str) -> None:
    real_dir = tmp_path / "sub" if where == "claimant shallower" else tmp_path
    width = 1024 if where == "claimant fits the model" else 768  # the real file is SD2, the model SD1
    write_safetensors(real_dir / "goodemb.safetensors", {"emb_params": vectors(2, width)})
    write_image(tmp_path / "a.png", torch.full((4, 768), 9.0), "GoodEmb")  # a stranger's picture claims the name
    library = scanned(tmp_path, Family.SD1)
    winner, claimant = library.find(str(real_dir / "goodemb.safetensors")), library.find(str(tmp_path / "a.png"))
    assert library.get("goodemb").path == winner.path
    assert claimant.status is Status.DUPLICATE
    assert "goodemb.safetensors" in claimant.reason and "stored inside" in claimant.reason


def test_two_pictures_claiming_one_name_keep_the_usual_order(tmp_path: Path) -> None:
    write_image(tmp_path / "b.png", vectors(1), "shared")
    write_image(tmp_path / "a.png", vectors(1, seed=1), "shared")
    library = scanned(tmp_path)
    assert library.get("shared").path == str(tmp_path / "a.png")
    assert "alphabetical" in library.find(str(tmp_path / "b.png")).reason


# -- F8: names stored in files are valid text from the moment they are decoded --------------------------------


@pytest.mark.parametrize("name", ["\ud800", "a\udc80b"])
def test_stored_name_with_a_lone_surrogate_is_replaced_at_decode(tmp_path: Path, name: str) -> None:
    path = tmp_path / "emb.safetensors"
    named_safetensors(path, name)
    data = decoding.decode(path.read_bytes(), str(path))
    assert data.name == name.replace(name.strip("ab"), "\ufffd")
    data.name.encode("utf-8")


# -- F7: what the command line prints ------------------------------------------------------------------------


@pytest.fixture
def hostile_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "emb"
    folder.mkdir()
    write_safetensors(folder / "good.safetensors", {"emb_params": vectors(1)})
    named_safetensors(os.path.join(os.fsencode(folder), ESC_NAME + b".safetensors"), "x")
    named_safetensors(folder / "surrogate.safetensors", "\ud800")
    # the stored name is shown by inspect; it is no keyword (not plain text), so the same name as a file name
    write_image(folder / "pic.png", vectors(1, seed=3), "evil\x1b]0;title\x07\u202eword\x9b")
    write_safetensors(folder / "evil\x1b]0;title\x07\u202eword\x9b.safetensors", {"emb_params": vectors(1, seed=4)})
    return folder


def run_main(capsys, *args: str | os.PathLike) -> tuple[str, str]:
    capsys.readouterr()
    main([os.fsdecode(arg) for arg in args])
    return capsys.readouterr()


def assert_clean(text: str) -> None:
    text.encode("utf-8")  # strict: no lone surrogate
    for bad in ("\x1b", "\x07", "\u202e", "\x9b"):
        assert bad not in text, f"{bad!r} printed raw"


def test_scan_table_escapes_names(hostile_folder: Path, capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SD_EMBEDDINGS_CACHE_DIR", str(tmp_path / "cache"))
    out, err = run_main(capsys, "scan", hostile_folder)
    assert_clean(out + err)
    assert "caf\ufffd\\x1b[31m" in out and "evil\\x1b]0;title\\x07\\u202eword\\x9b" in out


def test_scan_json_is_strict_utf8_json(hostile_folder: Path, capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SD_EMBEDDINGS_CACHE_DIR", str(tmp_path / "cache"))
    out, err = run_main(capsys, "scan", "--json", hostile_folder)
    assert_clean(out + err)
    keywords = {item["keyword"] for item in json.loads(out)}
    assert {"caf\ufffd\x1b[31m", "evil\x1b]0;title\x07\u202eword\x9b"} <= keywords  # the text itself is kept


@pytest.mark.parametrize("name", [ESC_NAME + b".safetensors", b"surrogate.safetensors", b"pic.png"])
def test_inspect_prints_escaped_text_and_strict_json(hostile_folder: Path, capsys, name: bytes) -> None:
    path = os.path.join(os.fsencode(hostile_folder), name)
    out, err = run_main(capsys, "inspect", "--json", path)
    assert_clean(out + err)
    report = json.loads(out)
    assert report["status"] == "loaded" and "\ufffd" in report["file"] + report["keyword"] or name == b"pic.png"
    out, err = run_main(capsys, "inspect", path)
    assert_clean(out + err)
    assert "status:    loaded" in out and not err, err


def test_convert_escapes_names(hostile_folder: Path, capsys, tmp_path: Path) -> None:
    path = os.path.join(os.fsencode(hostile_folder), ESC_NAME + b".safetensors")
    out, err = run_main(capsys, "convert", path, "--to", "png", "--out", tmp_path / "out")
    assert_clean(out + err)
    assert "\\x1b[31m" in out and "(verified)" in out


def test_verbose_log_and_c_locale_output_are_clean_bytes(hostile_folder: Path, tmp_path: Path) -> None:
    """A real process (logging set-up and the locale's encoding are per process)."""
    env = dict(os.environ, LC_ALL="C", LANG="C", SD_EMBEDDINGS_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "sd_embeddings", "scan", "-v", str(hostile_folder)],
                          capture_output=True, env=env, cwd=ROOT, timeout=300)
    for stream in (done.stdout, done.stderr):
        text = stream.decode("utf-8")  # strict
        assert_clean(text)
    assert b"Read " in done.stderr and b"\\x1b[31m" in done.stderr


def test_a_carriage_return_in_a_name_cannot_overwrite_its_line(tmp_path: Path, capsys) -> None:
    """A stored name holding \\r (written at test time) is printed escaped by inspect; progress keeps its \\r."""
    named_safetensors(tmp_path / "cr.safetensors", "innocent\rEVIL")
    out, err = run_main(capsys, "inspect", tmp_path / "cr.safetensors")
    assert "\r" not in out + err and "innocent\\rEVIL" in out
