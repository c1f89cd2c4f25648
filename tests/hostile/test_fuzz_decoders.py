"""Property tests: every decoder, fed mutated valid files, raises nothing but ``EmbeddingError``.

The default run is bounded (``DEFAULT_EXAMPLES`` per format); ``-m slow`` runs ``SLOW_EXAMPLES`` each.
"""

from __future__ import annotations

import contextlib
import io
import os

import pytest
import torch
from factories import vectors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save

from sd_embeddings.errors import EmbeddingError
from sd_embeddings.formats import decoding as formats
from sd_embeddings.formats import pickles
from sd_embeddings.records import EmbeddingData

DEFAULT_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SLOW_EXAMPLES = int(os.environ.get("FUZZ_SLOW_EXAMPLES", "5000"))
COUNT = {"examples": 0}


def _pt(legacy: bool) -> bytes:
    out = io.BytesIO()
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": vectors(2, 8)}, "name": "x", "step": 3},
               out, _use_new_zipfile_serialization=not legacy)
    return out.getvalue()


SEEDS = {
    "zip.pt": _pt(False),
    "legacy.pt": _pt(True),
    "x.safetensors": save({"emb_params": vectors(2, 8)}, metadata={"name": "x"}),
    "text.png": formats.encode_image(EmbeddingData(vectors(1, 8), "t"), "x", "text"),
    "pixels.png": formats.encode_image(EmbeddingData(vectors(1, 8), "t"), "x", "pixels"),
}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "overwrite", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at: at + len(chunk)] = chunk
        elif kind == "delete":
            del data[at: at + draw(st.integers(1, 64))]
    return bytes(data)


def _check(raw: bytes, name: str) -> None:
    COUNT["examples"] += 1
    with contextlib.suppress(EmbeddingError):  # anything else fails the test
        formats.decode(raw, name)
    if name.endswith(".pt"):
        with contextlib.suppress(EmbeddingError):  # the lazy path scanning uses
            formats.shape_of(pickles.load_pickle(raw, name, lazy=True), name, "pt")


def _fuzz(name: str, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(raw=mutated(SEEDS[name]))
    def run(raw: bytes) -> None:
        _check(raw, name)

    run()


def test_seeds_decode() -> None:
    for name, raw in SEEDS.items():
        assert formats.decode(raw, name).shape.vectors in (1, 2)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutated_files_raise_only_embedding_errors(name: str) -> None:
    _fuzz(name, DEFAULT_EXAMPLES)


@given(raw=st.binary(max_size=512), name=st.sampled_from(sorted(SEEDS)))
@settings(max_examples=DEFAULT_EXAMPLES, deadline=None, database=None)
def test_random_bytes_raise_only_embedding_errors(raw: bytes, name: str) -> None:
    _check(raw, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutated_files_long_run(name: str) -> None:
    _fuzz(name, SLOW_EXAMPLES)


@pytest.fixture(scope="module", autouse=True)
def _report_count() -> object:
    yield
    print(f"\nfuzz examples run: {COUNT['examples']}")
