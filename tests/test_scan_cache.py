"""A damaged scan cache (hashes.json, columnar: ``library/cache_file.py``) is ignored with one warning, never a
traceback, in the library and the CLI:
the files are simply read again. Damaged single records are skipped, the good ones still used."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from factories import vectors, write_a1111_pt

from sd_embeddings.library import Library, cache_file
from sd_embeddings.library.hashing import HashCache
from sd_embeddings.records import Status

ROOT = Path(__file__).resolve().parent.parent


def good_cache(tmp_path: Path) -> tuple[Path, dict]:
    """A real cache written by a real scan of one real file."""
    write_a1111_pt(tmp_path / "emb" / "x.pt", vectors(2))
    cache = HashCache(tmp_path / "cache" / "sd-embeddings" / "hashes.json")
    library = Library([tmp_path / "emb"], hash_cache=cache, background_hashing=False)
    library.refresh()
    library.hash_all()
    return cache.path, json.loads(cache.path.read_text())


def damaged(document: dict, how: str) -> str:
    """The one file's record damaged in one column (the cache is columnar: one list per field)."""
    columns = document["columns"]
    if how == "huge-float":
        compact = json.dumps(document, separators=(",", ":"))
        return compact.replace(f'"size":[{columns["size"][0]}]', '"size":[1e999]')
    if how == "deep":
        return f'{{"version": {cache_file.VERSION}, "columns": ' + "[" * 100_000 + "]" * 100_000 + "}"
    if how == "truncated":
        return json.dumps(document)[:-17]
    if how == "not-object":
        return "[1, 2, 3]"
    if how == "short-column":
        columns["keyword"] = []
        return json.dumps(document)
    edits = {"size-string": ("size", "12"), "scan-list": ("parts", [1, 2]), "parts-list": ("parts", [[2, 768]]),
             "name-dict": ("name", {"a": 1}), "sha-number": ("sha256", 12),
             "huge-rows": ("parts", ["", 2**40, 768]), "status-bogus": ("status", "pwned"),
             "step-float": ("step", 1e308)}
    column, value = edits[how]
    columns[column][0] = value
    return json.dumps(document, separators=(",", ":"))


HOW = ["huge-float", "deep", "truncated", "not-object", "short-column", "size-string", "scan-list", "parts-list",
       "name-dict", "sha-number", "huge-rows", "status-bogus", "step-float"]


@pytest.mark.parametrize("how", HOW)
def test_library_ignores_a_damaged_cache_with_one_warning(tmp_path, caplog, how):
    path, document = good_cache(tmp_path)
    path.write_text(damaged(document, how))
    caplog.set_level(logging.WARNING)
    library = Library([tmp_path / "emb"], hash_cache=HashCache(path), background_hashing=False)
    library.refresh()
    entry = library.get("x")
    assert entry is not None and entry.status is Status.LOADED and entry.vectors == 2
    assert library.load(entry).vec.shape == (2, 768)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    if how in ("huge-float", "deep", "truncated", "not-object", "short-column", "size-string", "sha-number"):
        assert len(warnings) == 1 and "cache" in warnings[0].getMessage()


@pytest.mark.parametrize("how", ["huge-float", "deep", "parts-list", "name-dict"])
def test_cli_scan_with_a_damaged_cache_prints_no_traceback(tmp_path, how):
    path, document = good_cache(tmp_path)
    path.write_text(damaged(document, how))
    result = subprocess.run([sys.executable, "-m", "sd_embeddings", "scan", "--json", str(tmp_path / "emb")],
                            cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert [row["status"] for row in json.loads(result.stdout)] == ["loaded"]


def test_the_cache_is_columnar_and_a_restart_reads_no_file(tmp_path, monkeypatch):
    """One list per field: JSON containers do not grow with fields per file (version 3 had four per file)."""
    for i in range(40):
        write_a1111_pt(tmp_path / "emb" / f"sub{i % 3}" / f"e{i}.pt", vectors(1 + i % 3, seed=i))
    cache = HashCache(tmp_path / "cache" / "hashes.json")
    library = Library([tmp_path / "emb"], hash_cache=cache, background_hashing=False)
    library.refresh()
    library.hash_all()
    raw = cache.path.read_bytes()
    assert raw.count(b"[") + raw.count(b"{") <= 40 + 20  # the parts of each file, plus the columns
    from sd_embeddings.formats import decoding

    read: list[str] = []
    monkeypatch.setattr(decoding, "scan_file", lambda path, size: read.append(path))
    again = Library([tmp_path / "emb"], hash_cache=HashCache(cache.path), background_hashing=False)
    again.refresh()
    assert read == [] and len(again.usable()) == 40 and all(e.sha256 for e in again.entries)
    assert [e.vectors for e in again.entries] == [e.vectors for e in library.entries]


def test_the_cache_file_is_read_on_first_use_not_when_made(tmp_path, monkeypatch):
    """The WebUI makes the cache on its main thread while it builds the UI; the first scan (another thread) reads
    it."""
    path, _ = good_cache(tmp_path)
    from sd_embeddings.library import cache_file

    reads: list[str] = []
    real = cache_file.decode
    monkeypatch.setattr(cache_file, "decode", lambda raw, where: reads.append(where) or real(raw, where))
    cache = HashCache(path)
    assert reads == []
    library = Library([tmp_path / "emb"], hash_cache=cache, background_hashing=False)
    library.refresh()
    assert reads == [str(path)] and library.get("x").sha256
