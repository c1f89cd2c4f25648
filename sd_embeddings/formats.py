"""Bytes -> embedding vectors, for every format the WebUI accepts, and back to ``.safetensors`` / images.

``decode`` is the one entry point: it sniffs the content (not only the extension), reads pickles through the
allow-list unpickler of ``pickles.py``, validates safetensors headers before allocating, and turns whatever
layout it finds into an ``EmbeddingData``. It raises only ``EmbeddingError`` subclasses.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import torch

from . import image_format, pickles, safetensors_file
from .errors import CorruptFileError, NotAnEmbeddingError
from .records import SDXL_KEYS, EmbeddingData, Header, Shape

logger = logging.getLogger(__name__)

PICKLE_EXTENSIONS = (".pt", ".bin")
SAFETENSORS_EXTENSIONS = (".safetensors",)
IMAGE_EXTENSIONS = (".png", ".webp", ".jxl", ".avif")
EMBEDDING_EXTENSIONS = PICKLE_EXTENSIONS + SAFETENSORS_EXTENSIONS + IMAGE_EXTENSIONS
MAX_VECTORS = 1000
"""More rows than this is a token table or a model part, not an embedding (75 fill a whole prompt chunk)."""
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
    if raw[:4] == b"PK\x03\x04" or raw[:1] == b"\x80":
        return "pickle"
    if len(raw) > 9 and raw[8:9] == b"{" and int.from_bytes(raw[:8], "little") < len(raw) + 2**27:
        return "safetensors"
    if raw[:8] == b"\x89PNG\r\n\x1a\n" or raw[:4] == b"RIFF" or raw[4:12] in (b"ftypavif", b"ftypavis") \
            or raw[:2] == b"\xff\x0a" or raw[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n":
        return "image"
    return fallback


def read_file(path: str | Path, limit: int = MAX_EMBEDDING_BYTES) -> bytes:
    """Read a whole embedding file, refusing files too big to be one (checked before reading)."""
    path = str(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise NotAnEmbeddingError(path, f"{size / 2**20:.0f} MB is far too big for an embedding "
                                                "(checkpoints and LoRAs belong in their own folders)")
            return handle.read(limit + 1)
    except OSError as e:
        raise CorruptFileError(path, f"cannot read the file ({e.strerror or type(e).__name__})") from e


def decode(raw: bytes, path: str | Path) -> EmbeddingData:
    """Decode one file's bytes. Raises ``EmbeddingError`` (unsafe, corrupt, not an embedding, unsupported)."""
    path = str(path)
    if not raw:
        raise CorruptFileError(path, "file is empty")
    kind = sniff(raw, format_of(path) or "unknown")
    if kind == "pickle":
        return interpret(pickles.load_pickle(raw, path), path, "pt")
    if kind == "safetensors":
        header = safetensors_file.parse_header(raw, len(raw), path)
        data: dict[str, Any] = dict(safetensors_file.read_tensors(raw, header, path))
        for key in ("name", "step", "sd_checkpoint", "sd_checkpoint_name"):
            if key in header.metadata and key not in data:
                data[key] = header.metadata[key]
        return interpret(data, path, "safetensors")
    if kind == "image":
        return interpret(image_format.decode_image(raw, path), path, "image")
    raise NotAnEmbeddingError(path, "unknown file type")


def decode_file(path: str | Path) -> EmbeddingData:
    return decode(read_file(path), path)


def header_of(data: EmbeddingData) -> Header:
    return Header(data.shape, data.layout, data.name, data.step, data.sd_checkpoint, data.sd_checkpoint_name)


def _as_int(value: Any) -> int | None:
    try:
        return int(value.item() if hasattr(value, "item") else value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _as_text(value: Any) -> str | None:
    return None if value is None else str(value)[:300]


def _rows(tensor: Any, path: str, what: str) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise NotAnEmbeddingError(path, f"{what} is a {type(tensor).__name__}, not a tensor")
    if not tensor.is_floating_point():
        raise NotAnEmbeddingError(path, f"{what} holds {str(tensor.dtype).replace('torch.', '')} values, not floats")
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(0)
    while tensor.dim() > 2 and tensor.shape[0] == 1:
        tensor = tensor.squeeze(0)
    if tensor.dim() != 2:
        raise NotAnEmbeddingError(path, f"{what} has shape {list(tensor.shape)}, expected [vectors, width]")
    rows, width = tensor.shape
    if rows == 0 or width == 0:
        raise CorruptFileError(path, f"{what} holds no vectors (shape {list(tensor.shape)})")
    if rows > MAX_VECTORS:
        raise NotAnEmbeddingError(path, f"{what} has {rows:,} vectors; that is a token table or model part, "
                                        f"not an embedding (at most {MAX_VECTORS})")
    tensor = tensor.detach().to(torch.float32).contiguous()
    bad = (~torch.isfinite(tensor)).any(dim=1)
    if bool(bad.any()):
        raise CorruptFileError(path, f"{int(bad.sum())} of {rows} vectors contain NaN or infinite values")
    return tensor


def _tensors(data: dict) -> dict[str, Any]:
    return {str(k): v for k, v in data.items() if isinstance(v, torch.Tensor)}


def _what_else(path: str, tensors: dict[str, Any]) -> NotAnEmbeddingError:
    keys = list(tensors)
    joined = " ".join(keys).lower()
    if "lora" in joined or any(k.endswith(".alpha") for k in keys):
        return NotAnEmbeddingError(path, f"looks like a LoRA ({len(keys)} tensors); put it in models/Lora")
    if "diffusion_model" in joined or "first_stage_model" in joined or "state_dict" in keys:
        return NotAnEmbeddingError(path, "looks like a model checkpoint, not an embedding")
    shown = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
    return NotAnEmbeddingError(path, f"holds {len(keys)} tensors ({shown}); an embedding holds one "
                                     "(or clip_l + clip_g for SDXL)")


def interpret(data: Any, path: str, container: str) -> EmbeddingData:
    """Find the vectors in a decoded object, in the WebUI's order: string_to_param, clip_l+clip_g, one tensor."""
    if not isinstance(data, dict):
        raise NotAnEmbeddingError(path, f"holds a {type(data).__name__}, not an embedding dictionary")
    meta = {"name": _as_text(data.get("name")), "step": _as_int(data.get("step")),
            "sd_checkpoint": _as_text(data.get("sd_checkpoint")),
            "sd_checkpoint_name": _as_text(data.get("sd_checkpoint_name"))}
    if "string_to_param" in data:
        params = data["string_to_param"]
        if isinstance(params, dict) and isinstance(params.get("_parameters"), dict):
            params = params["_parameters"]  # a torch.nn.ParameterDict saved by torch 1.11
        if not isinstance(params, dict) or len(params) != 1:
            count = len(params) if isinstance(params, dict) else 0
            raise NotAnEmbeddingError(path, f"embedding file has multiple terms in it ({count}); "
                                            "only single-term files can be used")
        (vec,) = params.values()
        return EmbeddingData(_rows(vec, path, "string_to_param"), f"{container}:a1111", **meta)
    tensors = _tensors(data)
    if all(key in tensors for key in SDXL_KEYS):
        parts = {key: _rows(tensors[key], path, key) for key in SDXL_KEYS}
        if parts["clip_l"].shape[0] != parts["clip_g"].shape[0]:
            raise CorruptFileError(path, f"clip_l has {parts['clip_l'].shape[0]} vectors but clip_g has "
                                         f"{parts['clip_g'].shape[0]}")
        return EmbeddingData(parts, f"{container}:sdxl", **meta)
    if len(tensors) == 1:
        ((key, vec),) = tensors.items()
        layout = "emb_params" if key == "emb_params" else ("diffusers" if key.startswith("<") else "single")
        return EmbeddingData(_rows(vec, path, f"'{key}'"), f"{container}:{layout}", **meta)
    if not tensors:
        raise NotAnEmbeddingError(path, "Couldn't identify this file as a textual inversion embedding "
                                        "or a diffusers concept (no tensors found)")
    raise _what_else(path, tensors)


def header_only(raw: bytes, file_size: int, path: str) -> Header:
    """Shape of a big safetensors file from its header alone (used when the file is too big to decode)."""
    header = safetensors_file.parse_header(raw, file_size, path)
    specs = header.tensors
    if all(key in specs for key in SDXL_KEYS):
        parts = {key: specs[key].shape for key in SDXL_KEYS}
    elif len(specs) == 1:
        parts = {"": next(iter(specs.values())).shape}
    else:
        raise _what_else(path, dict(specs))
    shape = Shape({k if k in SDXL_KEYS else "": (math.prod(s[:-1]) if len(s) > 1 else 1, s[-1] if s else 0)
                   for k, s in parts.items()})
    if shape.vectors > MAX_VECTORS:
        raise NotAnEmbeddingError(path, f"{shape.vectors:,} vectors; not an embedding")
    return Header(shape, "safetensors:header", header.metadata.get("name"))


def to_saveable(data: EmbeddingData) -> dict[str, torch.Tensor]:
    if isinstance(data.vec, dict):
        return {key: data.vec[key].contiguous() for key in SDXL_KEYS}
    return {"emb_params": data.vec.contiguous()}


def metadata_for(data: EmbeddingData, name: str) -> dict[str, str]:
    meta = {"name": name, "family": data.shape.family.value, "format": "sd_embeddings"}
    for key in ("step", "sd_checkpoint", "sd_checkpoint_name"):
        value = getattr(data, key)
        if value is not None:
            meta[key] = str(value)
    return meta


def write_safetensors(data: EmbeddingData, path: str | Path, name: str) -> None:
    """Write ``emb_params`` (SD1/SD2) or ``clip_l``/``clip_g`` (SDXL) with name/step/family metadata."""
    from safetensors.torch import save_file

    save_file(to_saveable(data), str(path), metadata=metadata_for(data, name))


def a1111_dict(data: EmbeddingData, name: str) -> dict[str, Any]:
    """The dict the WebUI saves in ``.pt`` files (and in images); SDXL keeps its two parts."""
    base: dict[str, Any] = {"name": name, "step": data.step, "sd_checkpoint": data.sd_checkpoint,
                            "sd_checkpoint_name": data.sd_checkpoint_name}
    if isinstance(data.vec, dict):
        return {**base, **{key: data.vec[key] for key in SDXL_KEYS}}
    return {"string_to_token": {"*": 265}, "string_to_param": {"*": data.vec}, **base}


def encode_image(data: EmbeddingData, name: str, carrier: str = "text") -> bytes:
    """A PNG carrying the embedding, in the ``text`` chunk or hidden in the ``pixels``."""
    payload = a1111_dict(data, name)
    if carrier == "pixels":
        return image_format.encode_pixels(payload, name)
    return image_format.encode_text_chunk(payload, name)
