"""Bytes -> embedding vectors, for every format the WebUI accepts, and back to ``.safetensors`` / images.

``decode`` is the one entry point: it sniffs the content (not only the extension), reads pickles through the
allow-list unpickler of ``pickles.py``, validates safetensors headers before allocating, and turns whatever
layout it finds into an ``EmbeddingData``. It raises only ``EmbeddingError`` subclasses.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

if TYPE_CHECKING:
    import torch

from ..errors import CorruptFileError, NotAnEmbeddingError
from ..records import EmbeddingData, Header, Shape
from . import image_format, pickles, safetensors_file
from .budget import MAX_DIMS, classified
from .layouts import META_KEYS, is_tensor, locate
from .lazy_torch import is_torch_tensor, torch_module
from .logs import get_logger

# the writers live in writing.py; callers that know this module as ``formats`` reach them here too
from .writing import a1111_dict, encode_image, metadata_for, to_saveable, write_safetensors  # noqa: F401

logger = get_logger(__name__)

PICKLE_EXTENSIONS = (".pt", ".bin")
SAFETENSORS_EXTENSIONS = (".safetensors",)
IMAGE_EXTENSIONS = (".png", ".webp", ".jxl", ".avif")
EMBEDDING_EXTENSIONS = PICKLE_EXTENSIONS + SAFETENSORS_EXTENSIONS + IMAGE_EXTENSIONS
MAX_VECTORS = 1000
"""More rows than this is a token table or a model part, not an embedding (75 fill a whole prompt chunk)."""
MAX_WIDTH = 4096
"""More values per vector than this is no text encoder's (CLIP-L 768, OpenCLIP-H 1024, bigG 1280, T5-XXL 4096):
refused from the shape, before any value is read, so a load's memory stays bounded by rows x width."""
MAX_EMBEDDING_BYTES = 64 * 1024 * 1024
"""Files above this are not decoded: the largest real embeddings are well under 1 MB."""


def format_of(path: str | Path) -> str | None:
    """``pickle``, ``safetensors``, ``image`` or None for extensions the WebUI ignores (case-insensitive)."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext in PICKLE_EXTENSIONS:
        return "pickle"
    if ext in SAFETENSORS_EXTENSIONS:
        return "safetensors"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    return None


def sniff(raw: bytes, fallback: str) -> str:
    """The real container of a file, whatever its extension says."""
    if raw[:4] == b"PK\x03\x04":
        return "pickle"
    # before the pickle check: a header of 128 + 256k bytes starts with 0x80, the pickle protocol byte
    if len(raw) > 9 and raw[8:9] == b"{" and int.from_bytes(raw[:8], "little") < len(raw) + 2**27:
        return "safetensors"
    if raw[:1] == b"\x80":
        return "pickle"
    if raw[:8] == b"\x89PNG\r\n\x1a\n" or raw[:4] == b"RIFF" or raw[4:12] in (b"ftypavif", b"ftypavis") \
            or raw[:2] == b"\xff\x0a" or raw[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n":
        return "image"
    return fallback


def open_regular(path: str | Path) -> BinaryIO:
    """Open a plain file for reading; anything else (a FIFO or device swapped in after a scan) raises OSError
    at once instead of blocking the reader for ever."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_file(path: str | Path, limit: int = MAX_EMBEDDING_BYTES) -> bytes:
    """Read a whole embedding file named by the user (the command line), refusing files too big to be one."""
    path = str(path)
    try:
        with open_regular(path) as handle:
            return read_open(handle, path, limit)
    except OSError as e:
        raise CorruptFileError(path, f"cannot read the file ({e.strerror or type(e).__name__})") from e


def read_open(handle: BinaryIO, path: str, limit: int = MAX_EMBEDDING_BYTES) -> bytes:
    """The whole of an already-open file, refusing one too big to be an embedding (checked before reading)."""
    size = os.fstat(handle.fileno()).st_size
    if size > limit:
        raise NotAnEmbeddingError(path, f"{size / 2**20:.0f} MB is far too big for an embedding "
                                        "(checkpoints and LoRAs belong in their own folders)")
    return handle.read(size + 1)  # a read of n bytes allocates n first: ask for the size measured, not the cap


def decode(raw: bytes, path: str | Path) -> EmbeddingData:
    """Decode one file's bytes. Raises only ``EmbeddingError`` (unsafe, corrupt, not an embedding, unsupported)."""
    path = str(path)
    if not raw:
        raise CorruptFileError(path, "file is empty")
    kind = sniff(raw, format_of(path) or "unknown")
    if kind == "pickle":
        opened = pickles.open_pickle(raw, path)
        with classified(path, "PyTorch file"):
            return interpret(opened.obj, path, "pt", opened.array)
    if kind == "safetensors":
        with classified(path, "safetensors file"):
            header = safetensors_file.parse_header(raw, len(raw), path)
            return interpret(_with_metadata(header.tensors, header.metadata), path, "safetensors",
                             functools.partial(_read_spec, raw, header, path))
    if kind == "image":
        with classified(path, "image"):
            return interpret(image_format.decode_image(raw, path), path, "image")
    raise NotAnEmbeddingError(path, "unknown file type")


def _read_spec(raw: bytes, header: safetensors_file.SafetensorsHeader, path: str,
               spec: safetensors_file.TensorSpec) -> torch.Tensor:
    """One tensor of a safetensors file: only the parts an embedding uses are read (and checked)."""
    only = dataclasses.replace(header, tensors={spec.name: spec})
    return safetensors_file.read_tensors(raw, only, path)[spec.name]


def decode_file(path: str | Path) -> EmbeddingData:
    return decode(read_file(path), path)


def header_of(data: EmbeddingData) -> Header:
    return Header(data.shape, data.layout, data.name, data.step, data.sd_checkpoint, data.sd_checkpoint_name)


def _dtype_name(tensor: Any) -> str:
    if isinstance(tensor, np.ndarray) or is_torch_tensor(tensor):
        return str(tensor.dtype).replace("torch.", "")
    return getattr(tensor, "dtype_name", None) or str(tensor.dtype)


def _is_float(tensor: Any) -> bool:
    if isinstance(tensor, np.ndarray):
        return tensor.dtype.kind == "f"
    return tensor.is_floating_point()


def _matrix_shape(tensor: Any, path: str, what: str) -> tuple[int, int]:
    """Validate a tensor (real or a lazy ``TensorRef``/``TensorSpec``) as [vectors, width]; 1-D is one vector."""
    if not is_tensor(tensor):
        raise NotAnEmbeddingError(path, f"{what} is a {type(tensor).__name__}, not a tensor")
    if not _is_float(tensor):
        raise NotAnEmbeddingError(path, f"{what} holds {_dtype_name(tensor)} values, not floats")
    if not all(type(size) is int for size in tensor.shape):  # e.g. a safetensors header saying [true, 768]
        raise CorruptFileError(path, f"{what} has a shape that is not made of whole numbers")
    if len(tensor.shape) > MAX_DIMS:
        raise NotAnEmbeddingError(path, f"{what} has {len(tensor.shape):,} dimensions, expected [vectors, width]")
    shape = list(tensor.shape)
    if len(shape) == 1:
        shape = [1, *shape]
    # leading 1s dropped in one slice: a loop of slices is quadratic in a file-declared rank
    first = next((i for i, size in enumerate(shape[:-2]) if size != 1), len(shape) - 2)
    shape = shape[first:]
    if len(shape) != 2:
        raise NotAnEmbeddingError(path, f"{what} has {len(tensor.shape)} dimensions, expected [vectors, width]")
    rows, width = shape
    if rows == 0 or width == 0:
        raise CorruptFileError(path, f"{what} holds no vectors (shape {shape})")
    if rows > MAX_VECTORS:
        raise NotAnEmbeddingError(path, f"{what} has {rows:,} vectors; that is a token table or model part, "
                                        f"not an embedding (at most {MAX_VECTORS})")
    if width > MAX_WIDTH:
        raise NotAnEmbeddingError(path, f"{what} has vectors of {width:,} values; no text encoder's are wider "
                                        f"than {MAX_WIDTH:,}, so it is not an embedding")
    return rows, width


def _rows(tensor: Any, path: str, what: str) -> torch.Tensor:
    rows, width = _matrix_shape(tensor, path, what)
    torch = torch_module()  # vectors are torch tensors from here on; scanning never gets this far
    if isinstance(tensor, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(tensor, dtype=np.float32))
    tensor = tensor.detach().reshape(rows, width).to(torch.float32).contiguous()
    bad = (~torch.isfinite(tensor)).any(dim=1)
    if bool(bad.any()):
        which = [str(i + 1) for i in bad.nonzero().flatten().tolist()]
        listed = ", ".join(which[:8]) + (", ..." if len(which) > 8 else "")
        raise CorruptFileError(path, f"{len(which)} of {rows} vectors contain NaN or infinite values "
                                     f"(vector{'s' if len(which) > 1 else ''} {listed})")
    return tensor


def _check_sdxl_rows(parts: dict[str, tuple[int, int]], path: str) -> None:
    if "clip_l" in parts and parts["clip_l"][0] != parts["clip_g"][0]:
        raise CorruptFileError(path, f"clip_l has {parts['clip_l'][0]} vectors but clip_g has {parts['clip_g'][0]}")


def interpret(data: Any, path: str, container: str, values: Callable[[Any], Any] | None = None) -> EmbeddingData:
    """Decoded object -> float32 vectors, validated (shape, NaN/Inf, SDXL row counts).

    ``values`` turns a located part into its values (pickles and safetensors read only the parts they use).
    """
    layout, parts, meta = locate(data, path)
    what = {"": "string_to_param" if layout == "a1111" else "the tensor"}
    _check_sdxl_rows({k: _matrix_shape(v, path, what.get(k, k)) for k, v in parts.items()}, path)
    vecs = {key: _rows(values(value) if values else value, path, what.get(key, key)) for key, value in parts.items()}
    return EmbeddingData(vecs if layout == "sdxl" else vecs[""], f"{container}:{layout}", **meta)


def shape_of(data: Any, path: str, container: str) -> Header:
    """Like ``interpret`` but from shapes only (tensors may be lazy ``TensorRef``s); values are not checked."""
    layout, parts, meta = locate(data, path)
    what = {"": "string_to_param" if layout == "a1111" else "the tensor"}
    shapes = {key: _matrix_shape(value, path, what.get(key, key)) for key, value in parts.items()}
    _check_sdxl_rows(shapes, path)
    return Header(Shape.shared(shapes), sys.intern(f"{container}:{layout}"), **meta)  # shared: 10,000 files


SCAN_READ_BYTES = 1024 * 1024
"""Files up to this size are read in one go when scanning (a single read costs the same as a 4 KiB one)."""


def scan_file(path: str, size: int = 0) -> Header:
    """What a file holds, from as little reading as possible: no tensor values are loaded or checked.

    Safetensors: the JSON header. Pickles: the pickled structure (storages are only referenced). Images have
    to be decoded. Values (NaN/Inf, truncated data) are checked later by ``decode``. (``size``, the size a
    folder listing saw, is not used: the file opened is measured.)
    """
    try:
        with open_regular(path) as handle:
            return scan_open(handle, path)
    except OSError as e:  # vanished or unreadable between the folder listing and now
        raise CorruptFileError(path, f"cannot read the file ({e.strerror or type(e).__name__})") from e


def scan_open(handle: BinaryIO, path: str) -> Header:
    """``scan_file`` of an already-open file: every byte comes from ``handle``, the file is never opened again
    (a second open by name could meet another file, a FIFO swapped in, than the one measured)."""
    try:
        return _scan_open(handle, path)
    except OSError as e:
        raise CorruptFileError(path, f"cannot read the file ({e.strerror or type(e).__name__})") from e


def _scan_open(handle: BinaryIO, path: str) -> Header:
    # the size of the file opened: it may have replaced the one the folder listing saw, and a head cut at
    # the old size would read as a broken file (the entry's stamp then no longer matches, so loads refuse it)
    size = os.fstat(handle.fileno()).st_size
    head = handle.read(min(size, SCAN_READ_BYTES) if size <= MAX_EMBEDDING_BYTES else 64 * 1024)
    kind = sniff(head, format_of(path) or "unknown")
    if kind == "safetensors":
        return header_only(head if len(head) >= size else _read_head(handle, head, size, path), size, path)
    if size > MAX_EMBEDDING_BYTES:
        raise NotAnEmbeddingError(path, f"{size / 2**20:.0f} MB is far too big for an embedding "
                                        "(checkpoints and LoRAs belong in their own folders)")
    raw = head if len(head) >= size else head + handle.read(size + 1 - len(head))
    if kind == "pickle":  # the same parse as ``decode``, stopping before tensor values are copied
        opened = pickles.open_pickle(raw, path)
        with classified(path, "PyTorch file"):
            return shape_of(opened.obj, path, "pt")
    if kind == "image":  # the same parse as ``decode``; values stay numpy, so a scan needs no torch
        with classified(path, "image"):
            return shape_of(image_format.decode_image(raw, path), path, "image")
    return header_of(decode(raw, path))


def _read_head(handle: BinaryIO, head: bytes, size: int, path: str) -> bytes:
    """Enough of a safetensors file to hold its whole header (checked against the whole file's size), read on
    from the handle ``head`` came from."""
    length = safetensors_file.header_length(head, size, path) if len(head) >= 8 else 0
    if 8 + length <= len(head):
        return head
    return head + handle.read(8 + length - len(head))


def header_only(raw: bytes, file_size: int, path: str) -> Header:
    """Shape of a safetensors file from its header alone (no tensor bytes are read)."""
    with classified(path, "safetensors file"):
        header = safetensors_file.parse_header(raw, file_size, path)
        return shape_of(_with_metadata(header.tensors, header.metadata), path, "safetensors")


def _with_metadata(tensors: dict[str, Any], metadata: dict[str, str]) -> dict[str, Any]:
    """A safetensors file as the dict ``_locate`` reads: its tensors plus name/step/checkpoint from metadata."""
    data: dict[str, Any] = dict(tensors)
    for key in META_KEYS:
        if key in metadata and key not in data:
            data[key] = metadata[key]
    return data
