"""Round 2 of the outside attack, file side: declared shapes of any rank (F1), files too large to hash (F2) and
replaced files that keep their size and mtime (F6). Every input is written here, at test time."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
from pathlib import Path

import pytest
import torch
from factories import vectors, write_a1111_pt, write_safetensors

from sd_embeddings.errors import NotAnEmbeddingError
from sd_embeddings.formats import decoding
from sd_embeddings.formats.budget import MAX_DIMS
from sd_embeddings.formats.safetensors_file import TensorSpec
from sd_embeddings.library import Library
from sd_embeddings.library.hashing import HashCache, sha256_file
from sd_embeddings.records import Status


def raw_safetensors(header: dict, data: bytes) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data


def scanned(folder: Path, **kwargs: object) -> Library:
    library = Library([folder], background_hashing=False, **kwargs)
    library.refresh()
    return library


# -- F1: a shape read from a file has at most MAX_DIMS dimensions ---------------------------------------------


@pytest.mark.parametrize("ones", [MAX_DIMS, 450])
def test_safetensors_shape_of_many_ones_is_refused_at_scan(tmp_path: Path, ones: int) -> None:
    """``[1]*n + [768]`` matches its byte range, so only a rank cap refuses it (one more than allowed, and many)."""
    header = {"emb_params": {"dtype": "F32", "shape": [1] * ones + [768], "data_offsets": [0, 3072]}}
    (tmp_path / "ones.safetensors").write_bytes(raw_safetensors(header, bytes(3072)))
    write_safetensors(tmp_path / "good.safetensors", {"emb_params": vectors(1)})
    library = scanned(tmp_path)
    entry = library.find(str(tmp_path / "ones.safetensors"))
    assert entry.status is Status.CORRUPT and f"at most {MAX_DIMS} dimensions" in entry.reason
    assert len(entry.reason) < 200  # the reason never spells out the declared shape
    assert library.get("good").status is Status.LOADED


def test_matrix_shape_caps_rank_of_any_tensor_description() -> None:
    """The decoder's own cap, whatever container produced the description (here a header spec, built directly)."""
    spec = TensorSpec("t", "F32", (1,) * 40 + (768,), 0, 3072)
    with pytest.raises(NotAnEmbeddingError, match="41 dimensions"):
        decoding._matrix_shape(spec, "x.safetensors", "the tensor")
    assert decoding._matrix_shape(TensorSpec("t", "F32", (1, 1, 3, 768), 0, 9216), "x", "t") == (3, 768)
    assert decoding._matrix_shape(TensorSpec("t", "F32", (1,) * 7 + (768,), 0, 3072), "x", "t") == (1, 768)
    with pytest.raises(NotAnEmbeddingError, match="3 dimensions"):
        decoding._matrix_shape(TensorSpec("t", "F32", (2, 1, 768), 0, 6144), "x", "t")


def test_pickled_tensor_of_high_rank_is_refused(tmp_path: Path) -> None:
    write_a1111_pt(tmp_path / "deep.pt", vectors(1).reshape((1,) * MAX_DIMS + (768,)))
    entry = scanned(tmp_path).find(str(tmp_path / "deep.pt"))
    assert entry.status is Status.CORRUPT and "tensor size" in entry.reason


# -- F2: nothing larger than an embedding can be is read or hashed in full -------------------------------------


def test_sparse_file_over_the_cap_is_never_hashed(tmp_path: Path) -> None:
    huge = tmp_path / "huge.safetensors"
    with open(huge, "wb") as handle:  # sparse: 200 MB claimed, nothing on disk
        handle.truncate(200 * 2**20)
    with pytest.raises(OSError) as caught:
        sha256_file(huge)
    assert caught.value.errno == errno.EFBIG
    write_a1111_pt(tmp_path / "good.pt", vectors(2))
    library = scanned(tmp_path)
    library.hash_all()
    assert library.find(str(huge)).sha256 is None and library.ensure_hash(library.find(str(huge))) is None
    assert library.get("good").sha256 == hashlib.sha256((tmp_path / "good.pt").read_bytes()).hexdigest()


def test_get_metadata_never_hashes(tmp_path: Path) -> None:
    """A plain GET (any page can fire one) reports the hash as pending or too large; it starts no hashing."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from sd_embeddings.tab.routes import make_router

    write_a1111_pt(tmp_path / "good.pt", vectors(2))
    with open(tmp_path / "huge.pt", "wb") as handle:
        handle.truncate(100 * 2**20)
    library = scanned(tmp_path)
    app = FastAPI()
    app.include_router(make_router(lambda: library))
    client = TestClient(app)
    for name, state in (("good.pt", "pending"), ("huge.pt", "too large")):
        answer = client.get("/sd-embeddings/v1/metadata", params={"id": f"0/{name}"})
        assert answer.status_code == 200 and answer.json()["file"]["sha256_state"] == state, answer.text
        assert library.find(str(tmp_path / name)).sha256 is None


# -- F6: a replaced file is read again even with the old size and mtime --------------------------------------


def replace_keeping_size_and_mtime(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    before = path.stat()
    replacement = path.with_name("replacement.tmp")
    write_safetensors(replacement, tensors)
    assert replacement.stat().st_size == before.st_size
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))  # what cp -p, rsync -t and archives do
    os.replace(replacement, path)


def test_replaced_file_with_same_size_and_mtime_is_read_again(tmp_path: Path) -> None:
    folder, cache_path = tmp_path / "emb", tmp_path / "cache" / "hashes.json"
    emb = write_safetensors(folder / "emb.safetensors", {"emb_params": vectors(2)})  # F32, 2 x 768: 6144 bytes
    first = scanned(folder, hash_cache=HashCache(cache_path))
    first.hash_all()
    replace_keeping_size_and_mtime(emb, {"emb_params": vectors(4).half()})  # F16, 4 x 768: also 6144 bytes
    again = scanned(folder, hash_cache=HashCache(cache_path))
    again.hash_all()
    entry = again.get("emb")
    assert entry.sha256 == hashlib.sha256(emb.read_bytes()).hexdigest() and entry.vectors == 4
    # the running library sees it too: the next refresh re-reads the file
    replace_keeping_size_and_mtime(emb, {"emb_params": vectors(2, seed=5)})
    again.refresh()
    assert again.get("emb").vectors == 2 and again.get("emb").sha256 is None


def test_cache_without_the_new_stamp_fields_is_simply_read_again(tmp_path: Path, caplog) -> None:
    folder, cache_path = tmp_path / "emb", tmp_path / "hashes.json"
    emb = write_a1111_pt(folder / "emb.pt", vectors(2))
    info = emb.stat()
    old = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "sha256": "0" * 64}
    cache_path.write_text(json.dumps({"version": 2, "files": {str(emb): old}}))
    library = scanned(folder, hash_cache=HashCache(cache_path))
    assert library.get("emb").sha256 is None  # the stale hash is not trusted
    library.hash_all()
    assert library.get("emb").sha256 == hashlib.sha256(emb.read_bytes()).hexdigest()
    assert not [r for r in caplog.records if r.levelname == "WARNING" and "cache" in r.getMessage()]
