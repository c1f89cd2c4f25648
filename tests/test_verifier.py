"""The library's verifier (composed, not a mixin): each file's check is isolated, the background worker survives
any exception one file raises, and ``load``/``verify``/``ensure_hash`` keep their behaviour."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
from factories import vectors, write_a1111_pt, write_safetensors

from sd_embeddings.errors import CorruptFileError
from sd_embeddings.formats import decoding
from sd_embeddings.library import Library
from sd_embeddings.library.verifier import Verifier
from sd_embeddings.records import Status


def bug_for(monkeypatch: pytest.MonkeyPatch, name: str, error: BaseException) -> None:
    """``formats.decode`` raising an unexpected exception type for one file. Decoders raise only EmbeddingError
    once their bugs are fixed, so such a file cannot be written today: this injects the bug (a fake, said so)."""
    real = decoding.decode

    def decode(raw: bytes, path: str) -> object:
        if Path(path).name == name:
            raise error
        return real(raw, path)

    monkeypatch.setattr(decoding, "decode", decode)


def test_library_composes_a_verifier() -> None:
    assert Verifier not in Library.__mro__
    assert isinstance(Library([], background_hashing=False).checks, Verifier)


def test_background_worker_survives_a_file_that_raises_and_checks_the_others(tmp_path, monkeypatch):
    for name in ("a", "bad", "c", "d"):
        write_a1111_pt(tmp_path / f"{name}.pt", vectors(2, seed=len(name)))
    bug_for(monkeypatch, "bad.pt", OverflowError("cannot fit 'int' into an index-sized integer"))
    library = Library([tmp_path])
    library.refresh()
    assert library.checks.idle.wait(600)  # waits for the worker (a hang cap, not a speed bound)
    worker = library.checks._thread
    entries = {e.keyword: e for e in library.entries}
    assert entries["bad"].status is Status.CORRUPT
    assert entries["bad"].reason == "cannot be read (OverflowError: cannot fit 'int' into an index-sized integer)"
    for name in ("a", "c", "d"):
        assert entries[name].verified and entries[name].status is Status.LOADED
        assert entries[name].sha256 == hashlib.sha256((tmp_path / f"{name}.pt").read_bytes()).hexdigest()
    write_safetensors(tmp_path / "late.safetensors", {"emb_params": vectors(1)})
    library.refresh()
    assert library.checks.idle.wait(600)
    assert worker.is_alive() and library.checks._thread is worker  # the same thread did the new work
    assert library.get("late").verified and library.get("late").sha256


def test_load_turns_an_unexpected_exception_into_a_corrupt_status(tmp_path, monkeypatch):
    write_a1111_pt(tmp_path / "odd.pt", vectors(2))
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    bug_for(monkeypatch, "odd.pt", TypeError("'bool' object cannot be interpreted as a shape"))
    with pytest.raises(CorruptFileError, match="TypeError"):
        library.load(library.get("odd"))
    entry = library.entries[0]
    assert entry.status is Status.CORRUPT and "TypeError" in entry.reason


def test_verify_and_ensure_hash_keep_their_behaviour(tmp_path):
    write_a1111_pt(tmp_path / "emb.pt", vectors(2))
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    entry = library.get("emb")
    assert library.ensure_hash(entry) == hashlib.sha256((tmp_path / "emb.pt").read_bytes()).hexdigest()
    library.verify(entry)
    assert library.entries[0].verified and library.load(entry).vec.shape == (2, 768)


def test_a_fifo_swapped_in_after_the_scan_never_blocks_hashing_or_checks(tmp_path):
    """``x.pt`` replaced by a named pipe with no writer: opening it for reading would block for ever. The calls
    run on a thread; the join is a hang cap (a generous one), not a speed bound."""
    write_a1111_pt(tmp_path / "x.pt", vectors(2))
    write_a1111_pt(tmp_path / "y.pt", vectors(1))
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    entry = library.get("x")
    os.unlink(tmp_path / "x.pt")
    os.mkfifo(tmp_path / "x.pt")
    results: dict[str, object] = {}

    def work() -> None:
        results["hash"] = library.ensure_hash(entry)
        library.verify(entry)
        with pytest.raises(CorruptFileError, match="not a regular file"):
            library.load(entry)
        results["done"] = True

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(300)
    if worker.is_alive():  # unblock the reader so the test process can end, then fail
        with open(tmp_path / "x.pt", "wb"):
            pass
        pytest.fail("opening a FIFO blocked the library")
    assert results == {"hash": None, "done": True}
    assert library.find(tmp_path / "y.pt").status is Status.LOADED


def test_the_background_pass_keeps_no_values(tmp_path):
    """Verifying every file decodes each one; none of them stays in memory (only what prompts load does)."""
    for i in range(6):
        write_safetensors(tmp_path / f"e{i}.safetensors", {"emb_params": vectors(2, seed=i)})
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    for entry in library.entries:
        library.verify(entry)
    assert all(e.verified for e in library.entries) and len(library.checks._cache) == 0
    library.load(library.entries[0])
    assert len(library.checks._cache) == 1
