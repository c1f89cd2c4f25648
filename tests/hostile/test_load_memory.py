"""A load's memory is what its budget charged (issue 10, attack round 3 finding 10).

The attack's 27 MB ``.pt`` (a deflated bfloat16 storage viewed as [1000, 40000]) peaked at +604 MB while the
budget had charged 240 MB: inflated pieces and their join, the whole storage widened twice, a copied view and the
NaN/Inf masks were never counted. Now a width no text encoder has is refused from the shape before any value is
read, and every buffer copying values out allocates is charged first. Tested by counting bytes: numpy's and
Python's allocations (tracemalloc) while the values are copied out never exceed what the budget was charged.
Peak RSS of whole loads is measured in ``benchmarks/pickle_memory.py``.
"""

from __future__ import annotations

import tracemalloc
import zipfile
import zlib
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from factories import vectors, write_safetensors
from hostile_kit import TALLY
from payloads import storage_zip

from sd_embeddings.errors import NotAnEmbeddingError
from sd_embeddings.formats import budget as budgets
from sd_embeddings.formats import decoding as formats
from sd_embeddings.formats import pickles

SLACK = 2 * 2**20
"""Allocations not charged: one inflated piece in flight (at most 1 MiB) and numpy's small temporaries."""


@pytest.mark.parametrize("rows, width", [(1000, 4097), (100, 40_000)])
def test_widths_no_text_encoder_has_are_refused_from_the_shape(tmp_path: Path, rows: int, width: int) -> None:
    """Refused by the scan (header only) and by a load before a single value is copied out."""
    raw = storage_zip(rows, width, pad=(2 * rows * width) // 3, zeros=True)
    path = tmp_path / "wide.pt"
    path.write_bytes(raw)
    TALLY["inputs"] += 1
    with pytest.raises(NotAnEmbeddingError, match="no text encoder"):
        formats.scan_file(str(path))
    tracemalloc.start()
    try:
        with pytest.raises(NotAnEmbeddingError, match="no text encoder"):
            formats.decode(raw, str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < rows * width  # under half the storage: it was never inflated
    st = tmp_path / "wide.safetensors"
    write_safetensors(st, {"emb_params": vectors(1, width)})
    with pytest.raises(NotAnEmbeddingError, match="no text encoder"):
        formats.scan_file(str(st))


@pytest.mark.parametrize("kind, itemsize, transposed, deflate", [
    ("BFloat16Storage", 2, False, True), ("BFloat16Storage", 2, True, True),
    ("DoubleStorage", 8, True, True), ("FloatStorage", 4, True, False), ("HalfStorage", 2, False, False)])
def test_copying_values_out_allocates_no_more_than_it_charged(kind: str, itemsize: int, transposed: bool,
                                                             deflate: bool) -> None:
    """A [1000, 1024] tensor in each storage type and layout: the traced peak while its values are copied out
    (inflate, copy, strided index, widening) stays within the bytes charged for it."""
    raw = storage_zip(1000, 1024, kind, itemsize, transposed, deflate, pad=1000 * 1024 * itemsize // 3)
    budget = budgets.Budget("x.pt")
    opened = pickles.open_pickle(raw, "x.pt", budget)
    ref = opened.obj["emb_params"]
    TALLY["inputs"] += 1
    before = budget.bytes
    tracemalloc.start()
    try:
        values = opened.array(ref)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    charged = before - budget.bytes
    assert values.shape == (1000, 1024) and np.isfinite(values).all()
    assert peak <= charged + SLACK, (peak, charged)
    assert charged <= 1000 * 1024 * (itemsize + 8 + 4) + len(raw) * 4  # and no more than the real work


def test_opening_charges_what_loading_each_tensor_makes_of_it() -> None:
    """Before any value is read, each tensor is charged its float32 vectors and NaN/Inf masks (6 bytes a value),
    so a file whose tensors would not fit is refused at the scan, not half-way through a load."""
    raw = storage_zip(1000, 1024, "FloatStorage", 4, deflate=False)
    budget = budgets.Budget("x.pt")
    pickles.open_pickle(raw, "x.pt", budget)
    assert budgets.MAX_BYTES - budget.bytes >= 1000 * 1024 * pickles.LOAD_BYTES_PER_VALUE


def test_inflating_hands_zlib_each_compressed_byte_about_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """zlib copies its unconsumed input on every call: handing it the whole rest of a member for each 1 MiB piece
    made inflating quadratic in the member (counted here as bytes handed to ``decompress``)."""
    from sd_embeddings.formats import zip_container

    handed = [0]
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *args: int) -> None:
            self.inner = real(*args)

        def __getattr__(self, name: str):
            return getattr(self.inner, name)

        def decompress(self, data, max_length: int = 0) -> bytes:
            handed[0] += len(data)
            return self.inner.decompress(data, max_length)

    monkeypatch.setattr(zip_container.zlib, "decompressobj", Counting)
    member = np.random.default_rng(1).integers(0, 4, 16 * 2**20, dtype=np.uint8).tobytes()  # ~4:1
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/0", member)
    raw = out.getvalue()
    archive = zip_container.parse_zip(raw, "x.pt")
    assert bytes(archive.read_view("archive/data/0")) == member
    assert handed[0] <= 2 * 2 * len(raw)  # verify + read, each about once
