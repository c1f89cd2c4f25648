"""Read ``.safetensors`` files ourselves, validating the header before a single tensor byte is allocated.

Writing goes through the ``safetensors`` package (see ``formats.write_safetensors``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

from ..errors import CorruptFileError, NotAnEmbeddingError
from . import json_limits
from .budget import MAX_DIMS
from .lazy_torch import torch_module

MAX_HEADER_BYTES = 100 * 1024 * 1024
"""The format's own limit: a longer declared header is a damaged file."""
HEADER_LIMITS = json_limits.JsonLimits(size=16 * 1024 * 1024, values=2_000_000, containers=200_000, strings=500_000)
"""What we parse: an embedding's header is under 1 KB, a LoRA's a few MB (tensor list plus training metadata);
within these counts a parse stays under ~120 MB. A larger header belongs to a model, not an embedding."""
_DTYPES: dict[str, tuple[str, int]] = {  # the format's name -> torch's name, bytes per value (torch loads lazily)
    "F32": ("float32", 4), "F16": ("float16", 2), "BF16": ("bfloat16", 2), "F64": ("float64", 8),
    "I64": ("int64", 8), "I32": ("int32", 4), "I16": ("int16", 2), "I8": ("int8", 1), "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
}
_FLOATS = {"F32", "F16", "BF16", "F64"}


@dataclass(frozen=True)
class TensorSpec:
    """One tensor as the header describes it; quacks like a tensor for shape checks (``dim``, ``dtype``)."""

    name: str
    dtype_name: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch_module(), _DTYPES[self.dtype_name][0])

    def dim(self) -> int:
        return len(self.shape)

    def is_floating_point(self) -> bool:
        return self.dtype_name in _FLOATS


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: dict[str, TensorSpec]
    metadata: dict[str, str]
    data_start: int


def header_length(prefix: bytes, file_size: int, path: str) -> int:
    """Length of the JSON header, checked against the file size before anything is read or allocated."""
    if file_size < 8 or len(prefix) < 8:
        raise CorruptFileError(path, "file is too short to be a safetensors file")
    (length,) = struct.unpack("<Q", prefix[:8])
    if length < 2 or length > MAX_HEADER_BYTES or 8 + length > file_size:
        raise CorruptFileError(path, f"safetensors header claims {length:,} bytes but the file has {file_size:,}")
    if length > HEADER_LIMITS.size:
        raise NotAnEmbeddingError(path, f"safetensors header of {length / 2**20:.0f} MB, far larger than an "
                                        "embedding's (a model or LoRA?); not read")
    return length


def parse_header(raw: bytes, file_size: int, path: str) -> SafetensorsHeader:
    """Parse and validate the header: dtypes known, shapes match byte ranges, ranges inside the file, no overlap."""
    length = header_length(raw, file_size, path)
    if len(raw) < 8 + length:
        raise CorruptFileError(path, "safetensors header is truncated")
    text = raw[8: 8 + length]
    json_limits.check(text, HEADER_LIMITS, path, "the safetensors header")
    try:
        document = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:  # deep nesting: RecursionError
        raise CorruptFileError(path, f"safetensors header is not valid JSON ({e.__class__.__name__})") from e
    if not isinstance(document, dict):
        raise CorruptFileError(path, "safetensors header is not a JSON object")
    data_size = file_size - 8 - length
    metadata_raw = document.pop("__metadata__", None) or {}
    metadata = {str(k): str(v) for k, v in metadata_raw.items()} if isinstance(metadata_raw, dict) else {}
    tensors: dict[str, TensorSpec] = {}
    for name, info in document.items():
        tensors[name] = _tensor_spec(name, info, data_size, path)
    ranges = sorted((spec.begin, spec.end) for spec in tensors.values() if spec.end > spec.begin)
    for (_, end), (begin, _) in zip(ranges, ranges[1:]):
        if begin < end:
            raise CorruptFileError(path, "safetensors tensors overlap each other")
    return SafetensorsHeader(tensors, metadata, 8 + length)


def _tensor_spec(name: str, info: object, data_size: int, path: str) -> TensorSpec:
    if not isinstance(info, dict):
        raise CorruptFileError(path, f"tensor '{name}' has no description")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in _DTYPES:
        raise CorruptFileError(path, f"tensor '{name}' has unknown dtype {str(dtype)[:20]!r}")
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS
            and all(isinstance(s, int) and 0 <= s < 2**40 for s in shape)):
        raise CorruptFileError(path, f"tensor '{name}' has an invalid shape (at most {MAX_DIMS} dimensions of "
                                     f"whole numbers)")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
        raise CorruptFileError(path, f"tensor '{name}' has invalid data offsets")
    begin, end = offsets
    expected = int(np.prod(shape, dtype=object)) * _DTYPES[dtype][1] if shape else _DTYPES[dtype][1]
    if begin < 0 or end < begin or end > data_size:
        raise CorruptFileError(path, f"tensor '{name}' points outside the file (bytes {begin}-{end} of {data_size})")
    if end - begin != expected:
        raise CorruptFileError(path, f"tensor '{name}' shape {shape} needs {expected} bytes, file gives {end - begin}")
    return TensorSpec(name, dtype, tuple(shape), begin, end)


def read_tensors(raw: bytes, header: SafetensorsHeader, path: str) -> dict[str, torch.Tensor]:
    """Tensors as float32 (non-float tensors are refused: an embedding is floats)."""
    out: dict[str, torch.Tensor] = {}
    for name, spec in header.tensors.items():
        if not spec.is_floating_point():
            raise NotAnEmbeddingError(path, f"tensor '{name}' holds {spec.dtype_name} values, not floats")
        chunk = raw[header.data_start + spec.begin: header.data_start + spec.end]
        if len(chunk) != spec.end - spec.begin:
            raise CorruptFileError(path, "safetensors data is truncated")
        torch, dtype = torch_module(), spec.dtype
        flat = torch.frombuffer(bytearray(chunk), dtype=dtype) if chunk else torch.empty(0, dtype=dtype)
        out[name] = flat.reshape(spec.shape).to(torch.float32)
    return out
