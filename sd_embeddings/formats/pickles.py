"""Read PyTorch ``.pt``/``.bin`` pickles without ever running code from them.

``torch.load`` is not used at all. The pickled structure is read by ``unpickler.SafeUnpickler`` (an allow-list
of globals mapped to functions of ours that build plain data); tensors are then rebuilt here from raw storage
bytes, after checking that the bytes are there. Both layouts ``torch.save`` has used are read: the zip archive
(torch >= 1.6) and the legacy stream (``_use_new_zipfile_serialization=False``, torch < 1.6).
"""

from __future__ import annotations

import collections
import io
import math
import struct
import zipfile
from typing import Any

import numpy as np
import torch

from ..errors import CorruptFileError, NotAnEmbeddingError, UnsafeFileError
from .unpickler import SafeParameterDict, SafeUnpickler, StorageRef, TensorRef, unpickle

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _read_storage_bytes(path: str, ref: StorageRef, blob: bytes) -> torch.Tensor:
    itemsize = torch.empty((), dtype=ref.dtype).element_size()
    expected = ref.numel * itemsize
    if len(blob) < expected:
        raise CorruptFileError(path, f"tensor data is truncated ({len(blob)} of {expected} bytes)")
    if not expected:
        return torch.empty(0, dtype=ref.dtype)
    return torch.frombuffer(bytearray(blob[:expected]), dtype=ref.dtype)


def _materialize(obj: Any, storages: dict[str, torch.Tensor], path: str) -> Any:
    """Replace every ``TensorRef`` in a plain structure by a real tensor (shared references resolved once)."""
    done: dict[int, Any] = {}
    budget = [2 * sum(flat.numel() for flat in storages.values()) + 2**20]

    def build(ref: TensorRef) -> torch.Tensor:
        flat = storages.get(ref.storage.key)
        if flat is None:
            raise CorruptFileError(path, f"tensor data '{ref.storage.key}' is missing")
        budget[0] -= math.prod(ref.size)
        if budget[0] < 0:  # many views of one storage, each copied out on its own
            raise CorruptFileError(path, "tensors together are far larger than the data in the file")
        numel = int(np.prod(ref.size)) if ref.size else 1
        if any(s < 0 for s in ref.size) or ref.offset < 0:
            raise CorruptFileError(path, "negative tensor size or offset")
        span = ref.offset + sum((s - 1) * st for s, st in zip(ref.size, ref.stride)) + 1 if numel else 0
        if span > flat.numel():
            raise CorruptFileError(path, f"tensor {list(ref.size)} reaches past its data")
        return flat.as_strided(ref.size, ref.stride, ref.offset).clone() if numel else flat.new_empty(ref.size)

    def walk(node: Any, depth: int = 0) -> Any:
        if depth > 50:
            raise CorruptFileError(path, "structure nests too deeply")
        if isinstance(node, TensorRef):
            if id(node) not in done:
                done[id(node)] = build(node)
            return done[id(node)]
        if isinstance(node, dict):
            if id(node) in done:
                return done[id(node)]
            out = type(node)() if isinstance(node, (collections.OrderedDict, SafeParameterDict)) else {}
            done[id(node)] = out
            for key, value in node.items():
                out[key] = walk(value, depth + 1)
            return out
        if isinstance(node, (list, tuple)):
            if id(node) not in done:
                done[id(node)] = type(node)(walk(v, depth + 1) for v in node)
            return done[id(node)]
        return node

    return walk(obj)


def _zip_members(data: bytes, path: str) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > 10_000:
                raise CorruptFileError(path, "zip archive has too many members")
            total = sum(info.file_size for info in infos)
            if total > 4 * len(data) + 1_000_000:  # torch stores members uncompressed; floats barely compress
                raise CorruptFileError(path, "zip archive expands far beyond its size (zip bomb?)")
            return {info.filename: _read_member(archive, info, path) for info in infos}
    except CorruptFileError:
        raise
    except Exception as e:
        raise CorruptFileError(path, f"broken zip archive ({type(e).__name__}: {str(e)[:80]})") from e


def _zip_structure_fast(data: bytes, path: str) -> Any | None:
    """The object in ``data.pkl`` read straight after the first local header (torch writes it first, stored).

    A pickle ends itself (STOP), so neither the central directory nor the member sizes are needed; anything
    unexpected returns None and the caller reads the archive properly.
    """
    if len(data) < 30:
        return None
    name_len, extra_len = struct.unpack_from("<HH", data, 26)
    method = struct.unpack_from("<H", data, 8)[0]
    name = data[30: 30 + name_len]
    if method != 0 or not name.endswith(b"/data.pkl") or name.count(b"/") != 1:
        return None
    stream = io.BytesIO(data)
    stream.seek(30 + name_len + extra_len)
    try:
        return SafeUnpickler(stream, path).load()
    except (UnsafeFileError, NotAnEmbeddingError):
        raise
    except Exception:  # truncated head or odd layout: let the full reader decide
        return None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str) -> bytes:
    """A member's bytes, never more than its declared size (``ZipFile.read`` inflates a lying member whole)."""
    with archive.open(info) as handle:
        blob = handle.read(info.file_size + 1)
    if len(blob) != info.file_size:
        raise CorruptFileError(path, f"zip member '{info.filename[:60]}' is not the size its header declares")
    return blob


def _load_zip(data: bytes, path: str, lazy: bool = False) -> Any:
    if lazy:
        found = _zip_structure_fast(data, path)
        if found is not None:
            return found
    members = _zip_members(data, path)
    pickles = [name for name in members if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise NotAnEmbeddingError(path, "zip file is not a PyTorch save (no data.pkl)")
    prefix = pickles[0][: -len("data.pkl")]
    big_endian = members.get(prefix + "byteorder", b"little").strip() == b"big"
    obj = unpickle(members[pickles[0]], path)
    if lazy:
        return obj
    storages: dict[str, torch.Tensor] = {}
    for ref in _storage_refs(obj):
        blob = members.get(f"{prefix}data/{ref.key}")
        if blob is None:
            raise CorruptFileError(path, f"tensor data '{ref.key}' is missing from the archive")
        flat = _read_storage_bytes(path, ref, blob)
        storages[ref.key] = flat.view(torch.uint8).view(-1, flat.element_size()).flip(1).view(ref.dtype).view(-1) \
            if big_endian and flat.element_size() > 1 else flat
    return _materialize(obj, storages, path)


def _load_legacy(data: bytes, path: str, lazy: bool = False, file_size: int | None = None) -> Any:
    stream = io.BytesIO(data)
    unpickler = SafeUnpickler(stream, path)  # BytesIO has no peek(): each load() stops exactly at its STOP
    next_object = unpickler.load
    try:
        if next_object() != _LEGACY_MAGIC:
            raise NotAnEmbeddingError(path, "not a PyTorch file (a pickle of something else)")
        next_object()  # protocol version
        next_object()  # sys info
        obj = next_object()
        keys = next_object()
    except (UnsafeFileError, CorruptFileError, NotAnEmbeddingError):
        raise
    except Exception as e:  # the pickle machine raises many types for garbage input
        raise CorruptFileError(path, f"broken legacy PyTorch pickle ({type(e).__name__})") from e
    if not isinstance(keys, list):
        raise CorruptFileError(path, "legacy PyTorch file has no storage index")
    refs = {ref.key: ref for ref in _storage_refs(obj)}
    storages: dict[str, torch.Tensor] = {}
    offset = stream.tell()
    if lazy:
        needed = sum(8 + ref.numel * torch.empty((), dtype=ref.dtype).element_size() for ref in refs.values())
        if offset + needed > (file_size if file_size is not None else len(data)):
            raise CorruptFileError(path, "tensor data is truncated (the file is shorter than its index says)")
        return obj
    for key in keys:
        ref = refs.get(key) if isinstance(key, str) else None
        if ref is None or len(data) < offset + 8 or struct.unpack_from("<q", data, offset)[0] != ref.numel:
            raise CorruptFileError(path, "legacy tensor data is truncated or does not match its index")
        nbytes = ref.numel * torch.empty((), dtype=ref.dtype).element_size()
        storages[ref.key] = _read_storage_bytes(path, ref, data[offset + 8: offset + 8 + nbytes])
        offset += 8 + nbytes
    return _materialize(obj, storages, path)


def _storage_refs(obj: Any) -> list[StorageRef]:
    found: dict[str, StorageRef] = {}
    seen: set[int] = set()
    stack = [obj]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, TensorRef):
            found.setdefault(node.storage.key, node.storage)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
    return list(found.values())


def load_pickle(data: bytes, path: str, lazy: bool = False, file_size: int | None = None) -> Any:
    """Decode a torch-saved object from bytes into dicts, lists, numbers, strings and tensors.

    With ``lazy`` tensors stay ``TensorRef`` (shape and dtype only) and ``data`` may be just the head of a
    file of ``file_size`` bytes: this is how scanning learns what a file holds without loading it.
    """
    if data[:4] == b"PK\x03\x04":
        return _load_zip(data, path, lazy)
    if data[:1] == b"\x80":
        return _load_legacy(data, path, lazy, file_size)
    if data[:6] == b"ustar\x00" or data[257:262] == b"ustar":
        raise NotAnEmbeddingError(path, "very old PyTorch tar format is not supported")
    raise NotAnEmbeddingError(path, "not a PyTorch file (no zip or pickle signature)")
