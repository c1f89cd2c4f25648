"""Names that are not UTF-8 (``b'caf\\xe9.pt'``) or carry lone surrogates (from JSON in a file): the scan and the CLI
never crash on them, ``scan --json`` is valid UTF-8 JSON, and the library offers a bytes-safe display name."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

from factories import vectors, write_a1111_pt

from sd_embeddings.library import Library, display_name, display_path, shown
from sd_embeddings.records import Status

ROOT = Path(__file__).resolve().parent.parent


def non_utf8_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "emb"
    write_a1111_pt(folder / "plain.pt", vectors(1))
    write_a1111_pt(folder / "tmp.pt", vectors(2))
    os.rename(os.fsencode(folder / "tmp.pt"), os.path.join(os.fsencode(folder), b"caf\xe9.pt"))
    os.mkdir(os.path.join(os.fsencode(folder), b"sub\xff"))
    write_a1111_pt(folder / "tmp2.pt", vectors(3))
    os.rename(os.fsencode(folder / "tmp2.pt"), os.path.join(os.fsencode(folder), b"sub\xff", b"deep.pt"))
    # a tensor name with a lone surrogate (legal in JSON) ends up in a reason
    header = json.dumps({"\ud800a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                         "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}).encode()
    (folder / "two.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 8)
    return folder


def test_library_scans_non_utf8_names_and_shows_them_safely(tmp_path: Path) -> None:
    folder = non_utf8_folder(tmp_path)
    library = Library([folder], background_hashing=False)
    library.refresh()
    by_name = {display_name(entry): entry for entry in library.entries}
    assert set(by_name) == {"plain", "caf\ufffd", "deep", "two"}
    assert by_name["caf\ufffd"].status is Status.LOADED and library.load(by_name["caf\ufffd"]).vec.shape == (2, 768)
    assert display_path(by_name["deep"]) == "sub\ufffd/deep.pt"
    assert os.path.exists(by_name["caf\ufffd"].path)  # the real name is kept for opening the file
    for entry in library.entries:
        for text in (display_name(entry), display_path(entry), shown(entry.reason)):
            text.encode("utf-8")  # strict: raises on any surrogate
    assert shown("ünïcödé 名前") == "ünïcödé 名前"


def run_scan(folder: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "XDG_CACHE_HOME": str(folder.parent / "cache")}
    return subprocess.run([sys.executable, "-m", "sd_embeddings", "scan", *flags, str(folder)], cwd=ROOT,
                          capture_output=True, env=env)


def test_cli_scan_json_is_valid_utf8_json(tmp_path: Path) -> None:
    result = run_scan(non_utf8_folder(tmp_path), "--json")
    assert b"Traceback" not in result.stderr, result.stderr.decode(errors="replace")
    rows = json.loads(result.stdout.decode("utf-8"))  # strict UTF-8, then JSON
    assert {row["keyword"] for row in rows} == {"plain", "caf\ufffd", "deep", "two"}
    assert {row["path"] for row in rows} >= {"caf\ufffd.pt", "sub\ufffd/deep.pt"}
    two = next(row for row in rows if row["keyword"] == "two")
    assert two["status"] == "not-an-embedding" and "holds 2 tensors" in two["reason"]


def test_cli_scan_table_prints_non_utf8_names(tmp_path: Path) -> None:
    result = run_scan(non_utf8_folder(tmp_path))
    assert b"Traceback" not in result.stderr, result.stderr.decode(errors="replace")
    assert "caf\ufffd" in result.stdout.decode("utf-8")
