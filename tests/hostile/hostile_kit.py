"""Helpers of the hostile suite: a folder of known-good files, a decode that counts outcomes, memory peaks.

Imported by the tests as ``hostile_kit`` (a unique name: every test folder has its own conftest.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from factories import vectors, write_a1111_pt, write_image, write_safetensors

from sd_embeddings import Library
from sd_embeddings.errors import EmbeddingError
from sd_embeddings.formats import decoding as formats
from sd_embeddings.records import Entry, Status

TALLY: dict[str, int] = {"inputs": 0, "code_executed": 0, "crashes": 0, "good_lost": 0}


@dataclass
class Folder:
    """An embeddings folder with known-good files in it, and the marker a payload would create."""

    path: Path
    marker: Path
    good: dict[str, torch.Tensor] = field(default_factory=dict)

    def add(self, name: str | bytes, raw: bytes) -> Path:
        target = Path(os.fsdecode(os.path.join(os.fsencode(self.path), os.fsencode(name))))
        target.write_bytes(raw)
        return target

    def scan(self) -> Library:
        TALLY["inputs"] += 1
        library = Library([self.path], background_hashing=False)
        try:
            library.refresh()
            for entry in library.entries:  # what the background pass does: read every value once
                library.verify(entry)
        except BaseException:
            TALLY["crashes"] += 1
            raise
        self.check(library)
        return library

    def check(self, library: Library) -> None:
        """No code ran and every good file is still there, loaded, with its exact vectors."""
        if self.marker.exists():
            TALLY["code_executed"] += 1
        assert not self.marker.exists(), "a payload ran code: the marker file was created"
        by_name = {Path(e.path).name: e for e in library.entries}
        for name, expected in self.good.items():
            entry = by_name.get(name)
            ok = entry is not None and entry.status is Status.LOADED
            if ok:
                data = library.load(entry)
                ok = torch.equal(data.vec, expected)
            if not ok:
                TALLY["good_lost"] += 1
            assert ok, f"good file {name} was lost: {entry}"

    def entry(self, library: Library, name: str | bytes) -> Entry:
        wanted = os.fsdecode(name)
        matches = [e for e in library.entries if Path(e.path).name == wanted]
        assert len(matches) == 1, [Path(e.path).name for e in library.entries]
        return matches[0]


def fill_good(folder: Path) -> dict[str, torch.Tensor]:
    """One good file per format: zip .pt, legacy .pt, .safetensors, PNG text chunk."""
    good = {}
    good["good_zip.pt"] = vectors(2, 768, seed=1)
    write_a1111_pt(folder / "good_zip.pt", good["good_zip.pt"])
    good["good_legacy.pt"] = vectors(3, 768, seed=2)
    write_a1111_pt(folder / "good_legacy.pt", good["good_legacy.pt"], legacy=True)
    good["good_st.safetensors"] = vectors(1, 1024, seed=3)
    write_safetensors(folder / "good_st.safetensors", {"emb_params": good["good_st.safetensors"]})
    good["good_card.png"] = vectors(2, 768, seed=4).double().float()
    write_image(folder / "good_card.png", good["good_card.png"], "good_card")
    return good


def decode_only(raw: bytes, path: str, marker: Path | None = None) -> EmbeddingError | None:
    """Decode bytes directly: the only exception allowed out is ``EmbeddingError``. Returns it (or None)."""
    TALLY["inputs"] += 1
    try:
        formats.decode(raw, path)
    except EmbeddingError as e:
        return e
    except BaseException:
        TALLY["crashes"] += 1
        raise
    finally:
        if marker is not None and marker.exists():
            TALLY["code_executed"] += 1
    return None


def _rss_peak_mib() -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


@contextlib.contextmanager
def peak_memory() -> Iterator[dict[str, int]]:
    """Peak resident memory growth (MiB) of this process inside the block (Linux; covers torch and numpy).

    Python's tracemalloc does not see torch's allocator, so the kernel's high-water mark is reset and read.
    """
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pytest.skip("peak RSS cannot be reset on this system")
    before = _rss_peak_mib()
    if before is None:
        pytest.skip("peak RSS is not readable on this system")
    result: dict[str, int] = {}
    yield result
    result["growth_mib"] = (_rss_peak_mib() or 0) - before
