"""Safetensors headers: a valid header over the 1 MiB first read is read (the format allows up to 100 MB); headers
too big for an embedding, or whose parse would cost too much memory, are refused with a reason, before parsing."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from factories import vectors, write_safetensors

from sd_embeddings.formats import decoding
from sd_embeddings.library import Library
from sd_embeddings.records import Status


def scan(folder: Path, deep: bool = False) -> dict[str, tuple[Status, str]]:
    library = Library([folder], background_hashing=False, deep=deep)
    library.refresh()
    return {entry.filename: (entry.status, entry.reason) for entry in library.entries}


def test_a_valid_header_over_one_mib_is_read_by_scans_and_loads(tmp_path: Path) -> None:
    vec = vectors(2)
    notes = "training notes " * 200_000  # 3 MB of metadata: header far beyond the first 1 MiB read
    write_safetensors(tmp_path / "long.safetensors", {"emb_params": vec}, metadata={"notes": notes})
    assert struct.unpack("<Q", (tmp_path / "long.safetensors").read_bytes()[:8])[0] > 2 * 2**20
    assert scan(tmp_path) == {"long.safetensors": (Status.LOADED, "")}
    assert scan(tmp_path, deep=True) == {"long.safetensors": (Status.LOADED, "")}
    assert torch.equal(decoding.decode_file(tmp_path / "long.safetensors").vec, vec)


def raw_safetensors(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


def test_a_header_too_big_for_an_embedding_is_not_read(tmp_path: Path) -> None:
    data = vectors(1).numpy().tobytes()
    header = json.dumps({"__metadata__": {"notes": "x" * (20 * 2**20)}, "emb_params": {
        "dtype": "F32", "shape": [1, 768], "data_offsets": [0, len(data)]}}).encode()
    (tmp_path / "big.safetensors").write_bytes(raw_safetensors(header, data))
    status, reason = scan(tmp_path)["big.safetensors"]
    assert status is Status.NOT_AN_EMBEDDING and "far larger than an embedding's" in reason


def test_a_header_whose_parse_would_cost_too_much_memory_is_refused_by_count(tmp_path: Path) -> None:
    data = vectors(1).numpy().tobytes()
    lists = b"[]," * (3 * 2**20)  # 9 MB of JSON, about 200 MB as Python lists
    header = (b'{"__metadata__": {"x": [' + lists + b'[]]}, "emb_params": {"dtype": "F32", "shape": [1, 768], '
              b'"data_offsets": [0, ' + str(len(data)).encode() + b"]}}")
    (tmp_path / "lists.safetensors").write_bytes(raw_safetensors(header, data))
    status, reason = scan(tmp_path)["lists.safetensors"]
    assert status is Status.CORRUPT and "more than an embedding file" in reason and "refused" in reason
