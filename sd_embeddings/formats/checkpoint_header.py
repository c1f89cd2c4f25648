"""Which model family a single-file checkpoint is, from its text-encoder tensor names (LDM/SGM layout).

``checkpoint_family(path)`` reads only a ``.safetensors`` header (the JSON before the weights: about 100 KB for a
2 GB checkpoint), never the weights, so an embedding listing can be right about compatibility before the WebUI has
loaded the model. Other files (``.ckpt`` pickles) give None: telling would mean reading the whole pickle.
"""

from __future__ import annotations

import json
import os
import struct

from ..records import Family

SD1_PREFIX = "cond_stage_model.transformer."
SD2_PREFIX = "cond_stage_model.model."
SDXL_L_PREFIX = "conditioner.embedders.0.transformer."
SDXL_G_PREFIX = "conditioner.embedders.1.model."
MAX_HEADER = 64 * 1024 * 1024
"""Far above any checkpoint's header (SDXL's is about 200 KB); a larger claim is not read."""


def family_of(keys: list[str]) -> Family | None:
    if any(key.startswith(SDXL_G_PREFIX) for key in keys):
        return Family.SDXL
    if any(key.startswith(SD2_PREFIX) for key in keys):
        return Family.SD2
    if any(key.startswith(SD1_PREFIX) for key in keys):
        return Family.SD1
    return None


def checkpoint_family(path: str | os.PathLike) -> Family | None:
    """The family of a ``.safetensors`` checkpoint from its header; None when not told (other format, unreadable,
    no text encoder found)."""
    if not os.fspath(path).lower().endswith(".safetensors"):
        return None
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                return None
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER:
                return None
            document = json.loads(handle.read(length))
    except (OSError, ValueError, RecursionError):  # unreadable or not JSON: unknown, as for a .ckpt
        return None
    return family_of(list(document)) if isinstance(document, dict) else None
