"""Embeddings -> bytes: ``.safetensors`` with name/step/family metadata, the WebUI's ``.pt`` dict, and PNGs that
carry an embedding (in a text chunk or hidden in the pixels)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..records import SDXL_KEYS, EmbeddingData
from . import image_format
from .layouts import META_KEYS

if TYPE_CHECKING:
    import torch


def to_saveable(data: EmbeddingData) -> dict[str, torch.Tensor]:
    if isinstance(data.vec, dict):
        return {key: data.vec[key].contiguous() for key in SDXL_KEYS}
    return {"emb_params": data.vec.contiguous()}


def metadata_for(data: EmbeddingData, name: str) -> dict[str, str]:
    meta = {"name": name, "family": data.shape.family.value, "format": "sd_embeddings"}
    for key in META_KEYS[1:]:  # the name is the one given
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
