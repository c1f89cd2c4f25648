"""Read PyTorch ``.pt``/``.bin`` pickles without ever running code from them, and without importing torch.

The pickled structure is read by ``unpickler.SafeUnpickler`` (allow-listed globals mapped to strict functions of
ours); tensors are then copied here out of raw storage bytes as numpy arrays, after checking that the bytes are
there. Scanning (``lazy``) and loading run the same steps on the same parse of the container: the only thing a
lazy read skips is copying the values, so what a scan reports is what a load returns. Both layouts ``torch.save``
has used are read: the zip archive (torch >= 1.6) and the legacy stream (torch < 1.6).
"""

from __future__ import annotations

import functools
import io
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CorruptFileError, NotAnEmbeddingError
from .budget import Budget, classified, shown
from .pickle_values import SafeParameterDict, StorageRef, TensorRef
from .unpickler import SafeUnpickler, next_object, unpickle
from .zip_container import parse_zip

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
MAX_DEPTH = 64


def _walk(obj: Any, budget: Budget) -> list[TensorRef]:
    """Every distinct tensor in a decoded structure; each container is visited once (memo sharing is cheap)."""
    found: list[TensorRef] = []
    seen: set[int] = set()
    stack = [obj]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        budget.spend_nodes()
        if type(node) is TensorRef:
            found.append(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif type(node) in (list, tuple):
            stack.extend(node)
    return found


LOAD_BYTES_PER_VALUE = 4 + 2
"""What a load makes of each value after copying it out (charged for every tensor when the file is opened): its
float32 vector (a float16/float64 tensor is converted) and the two NaN/Inf masks (one byte each)."""


def _storages_needed(refs: list[TensorRef], budget: Budget) -> dict[tuple[str, str], StorageRef]:
    """Distinct storages (by key and element type), charging what loading each tensor makes of it."""
    needed: dict[tuple[str, str], StorageRef] = {}
    for ref in refs:
        budget.spend_bytes(math.prod(ref.size) * LOAD_BYTES_PER_VALUE)
        storage = ref.storage
        known = needed.setdefault((storage.key, storage.scalar.name), storage)
        if known.numel != storage.numel:
            raise CorruptFileError(budget.path, "two tensors give one storage different sizes")
    return needed


def _flat(blob: bytes | memoryview | bytearray, storage: StorageRef, big_endian: bool) -> np.ndarray:
    """A view of a storage's ``numel`` elements, by a dtype named here (never from the file); nothing is copied.

    bfloat16 is viewed as its raw 16-bit words and bool as bytes: ``_values`` widens only the elements a tensor
    uses, never the whole storage."""
    scalar, order = storage.scalar, ">" if big_endian else "<"
    code = {"bf16": "u2", "b1": "u1"}.get(scalar.code, scalar.code)
    return np.frombuffer(blob, dtype=np.dtype(order + code if code != "u1" else code), count=storage.numel)


def _copy_out(ref: TensorRef, flat: np.ndarray, budget: Budget) -> np.ndarray:
    """The tensor's elements as a new array (charged: the copy, and the int64 index of a strided view); its
    geometry was checked against the storage when it was built."""
    numel = math.prod(ref.size)
    budget.spend_bytes(numel * flat.dtype.itemsize)
    if numel == 0:
        return np.zeros(ref.size, dtype=flat.dtype)
    contiguous, step = [], 1
    for size in reversed(ref.size):
        contiguous.insert(0, step)
        step *= size
    if all(st == c or size == 1 for st, c, size in zip(ref.stride, contiguous, ref.size)):
        return flat[ref.offset: ref.offset + numel].reshape(ref.size).copy()
    budget.spend_bytes(numel * 8)
    index = np.full(ref.size, ref.offset, dtype=np.int64)
    for axis, (size, stride) in enumerate(zip(ref.size, ref.stride)):
        shape = [1] * len(ref.size)
        shape[axis] = size
        index += np.arange(size, dtype=np.int64).reshape(shape) * stride
    return flat[index]  # fancy indexing is bounds-checked: a view can never read outside its storage


def _values(raw: np.ndarray, storage: StorageRef, budget: Budget) -> np.ndarray:
    """A tensor's copied-out raw elements as numbers: bfloat16 is the top half of a float32 (widened in one
    new array, shifted in place), bool a comparison; other types are already numbers."""
    if storage.scalar.code == "bf16":
        budget.spend_bytes(raw.size * 4)
        wide = raw.astype("<u4")
        wide <<= 16
        return wide.view("<f4")
    if storage.scalar.code == "b1":
        budget.spend_bytes(raw.size)
        return raw != 0
    return raw


def _materialize(obj: Any, opened: PickleFile, budget: Budget) -> Any:
    """Replace every ``TensorRef`` by its array, sharing resolved once (the structure is a DAG, not a tree)."""
    done: dict[int, Any] = {}

    def walk(node: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise CorruptFileError(budget.path, f"structure nests more than {MAX_DEPTH} levels deep")
        if id(node) in done:
            return done[id(node)]
        budget.spend_nodes()
        if type(node) is TensorRef:
            out: Any = opened.array(node)
        elif isinstance(node, dict):
            out = SafeParameterDict() if type(node) is SafeParameterDict else type(node)()
            done[id(node)] = out
            for key, value in node.items():
                out[key] = walk(value, depth + 1)
        elif type(node) in (list, tuple):
            out = type(node)(walk(value, depth + 1) for value in node)
        else:
            return node
        done[id(node)] = out
        return out

    return walk(obj, 0)


@dataclass
class PickleFile:
    """A parsed torch save: its structure (tensors as ``TensorRef``) and where each storage's bytes are.

    Every check that does not need tensor values has run when this exists (storages present, long enough);
    ``array`` copies one tensor's values out, so a load reads only the tensors it uses.
    """

    obj: Any
    storages: dict[tuple[str, str], tuple[StorageRef, Callable[[], bytes]]]
    big_endian: bool
    budget: Budget
    _flats: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def array(self, ref: TensorRef) -> np.ndarray:
        key = (ref.storage.key, ref.storage.scalar.name)
        flat = self._flats.get(key)
        if flat is None:
            storage, read = self.storages[key]
            raw = read()
            if not isinstance(raw, memoryview):  # an inflated member: a new buffer (a view of the file is free)
                self.budget.spend_bytes(len(raw))
            flat = self._flats[key] = _flat(raw, storage, self.big_endian)
        return _values(_copy_out(ref, flat, self.budget), ref.storage, self.budget)


def _check_length(available: int, ref: StorageRef, path: str) -> None:
    expected = ref.numel * ref.scalar.itemsize
    if available < expected:
        raise CorruptFileError(path, f"tensor data is truncated ({available:,} of {expected:,} bytes)")


def _open_zip(data: bytes, path: str, budget: Budget) -> PickleFile:
    archive = parse_zip(data, path)
    pickles = [name for name in archive.members if name.endswith("/data.pkl") and name.count("/") == 1]
    if not pickles:
        raise NotAnEmbeddingError(path, "zip file is not a PyTorch save (no data.pkl)")
    if len(pickles) > 1:
        raise CorruptFileError(path, f"zip file holds {len(pickles)} PyTorch saves (data.pkl files); refused")
    prefix = pickles[0][: -len("data.pkl")]
    blob = archive.read(pickles[0])
    budget.spend_bytes(len(blob))
    obj = unpickle(blob, path, budget)
    big_endian = prefix + "byteorder" in archive.members and archive.read(prefix + "byteorder").strip() == b"big"
    storages = {}
    for (key, name), ref in _storages_needed(_walk(obj, budget), budget).items():
        member = archive.members.get(f"{prefix}data/{key}")
        if member is None:
            raise CorruptFileError(path, f"tensor data '{shown(key)}' is missing from the archive")
        _check_length(member.size, ref, path)
        storages[(key, name)] = (ref, functools.partial(archive.read_view, member.name))
    return PickleFile(obj, storages, big_endian, budget)


def _legacy_storages(data: bytes, offset: int, keys: Any, needed: dict, budget: Budget) -> dict:
    """After the pickles, each storage in ``keys`` order: its element count (int64) and its bytes."""
    by_key = {key: (name, ref) for (key, name), ref in needed.items()}
    if type(keys) is not list or not all(type(key) is str for key in keys) or len(set(keys)) != len(keys) \
            or not set(by_key) <= set(keys):
        raise CorruptFileError(budget.path, "legacy PyTorch file has no valid storage index")
    storages = {}
    for key in keys:
        if key not in by_key or len(data) < offset + 8:
            raise CorruptFileError(budget.path, "legacy tensor data is truncated or does not match its index")
        name, ref = by_key[key]
        (count,) = struct.unpack_from("<q", data, offset)
        if count != ref.numel:
            raise CorruptFileError(budget.path, "legacy tensor data does not match its index")
        nbytes = ref.numel * ref.scalar.itemsize
        _check_length(len(data) - offset - 8, ref, budget.path)
        storages[(key, name)] = (ref, functools.partial(_slice, data, offset + 8, nbytes))
        offset += 8 + nbytes
    return storages


def _slice(data: bytes, start: int, length: int) -> memoryview:
    return memoryview(data)[start: start + length]


def _open_legacy(data: bytes, path: str, budget: Budget) -> PickleFile:
    stream = io.BytesIO(data)
    unpickler = SafeUnpickler(stream, path, budget)  # BytesIO has no peek(): each load() stops exactly at its STOP
    magic = next_object(unpickler)
    if type(magic) is not int or magic != _LEGACY_MAGIC:
        raise NotAnEmbeddingError(path, "not a PyTorch file (a pickle of something else)")
    next_object(unpickler)  # protocol version
    next_object(unpickler)  # sys info
    obj = next_object(unpickler)
    keys = next_object(unpickler)
    needed = _storages_needed(_walk(obj, budget), budget)
    return PickleFile(obj, _legacy_storages(data, stream.tell(), keys, needed, budget), False, budget)


def open_pickle(data: bytes, path: str, budget: Budget | None = None) -> PickleFile:
    """Parse a torch save once: container, pickle, storage index. Scanning stops here; loading reads values."""
    budget = budget or Budget(path)
    with classified(path, "PyTorch file"):
        if data[:4] == b"PK\x03\x04":
            return _open_zip(data, path, budget)
        if data[:1] == b"\x80":
            return _open_legacy(data, path, budget)
    if data[:6] == b"ustar\x00" or data[257:262] == b"ustar":
        raise NotAnEmbeddingError(path, "very old PyTorch tar format is not supported")
    raise NotAnEmbeddingError(path, "not a PyTorch file (no zip or pickle signature)")


def load_pickle(data: bytes, path: str, lazy: bool = False) -> Any:
    """The whole decoded object: dicts, lists, numbers, strings and numpy arrays (``TensorRef`` with ``lazy``)."""
    opened = open_pickle(data, path)
    if lazy:
        return opened.obj
    with classified(path, "PyTorch file"):
        return _materialize(opened.obj, opened, opened.budget)
