"""Where the vectors are in a decoded file, in the WebUI's order, and the metadata stored beside them.

Works on any decoded structure (real tensors, numpy arrays, or the shape-only ``TensorRef``/``TensorSpec`` a scan
uses), so the header scan and the full load locate the same part. Values from the file are only read when they
are plain (a ``step`` is an int, a name is text); keys shown in reasons are cut short and made printable.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import NotAnEmbeddingError
from ..records import SDXL_KEYS
from .budget import shown
from .lazy_torch import is_torch_tensor
from .pickle_values import TensorRef
from .safetensors_file import TensorSpec
from .text import shown as valid_text

META_KEYS = ("name", "step", "sd_checkpoint", "sd_checkpoint_name")
"""Stored alongside the vectors (the WebUI's ``Embedding`` fields of the same names)."""
def is_tensor(value: Any) -> bool:
    """Real tensors, and the shape-only stand-ins scanning uses."""
    return isinstance(value, (np.ndarray, TensorRef, TensorSpec)) or is_torch_tensor(value)


def _as_int(value: Any) -> int | None:
    """A step: a plain int (or the digits safetensors metadata stores) in int64 range; anything else is dropped."""
    if type(value) is str and 0 < len(value) <= 20 and value.lstrip("-").isdigit() and value.isascii():
        value = int(value)
    if type(value) is int and -(2**63) <= value < 2**63:
        return value
    return None


def _as_text(value: Any) -> str | None:
    """A name or checkpoint: plain text (lone surrogates replaced: it is shown and written as UTF-8 everywhere),
    or a small number written as text. Other values are dropped."""
    if type(value) is str:
        return valid_text(value[:300])
    if type(value) is int and value.bit_length() <= 64 or type(value) is float and math.isfinite(value):
        return str(value)
    return None


def _tensors(data: dict) -> dict[str, Any]:
    """The tensors stored under text keys (torch and safetensors name tensors with text)."""
    return {key: value for key, value in data.items() if type(key) is str and is_tensor(value)}


def _what_else(path: str, tensors: dict[str, Any]) -> NotAnEmbeddingError:
    keys = list(tensors)
    joined = " ".join(keys).lower()
    if "lora" in joined or any(k.endswith(".alpha") for k in keys):
        return NotAnEmbeddingError(path, f"looks like a LoRA ({len(keys)} tensors); put it in models/Lora")
    if "diffusion_model" in joined or "first_stage_model" in joined or "state_dict" in keys:
        return NotAnEmbeddingError(path, "looks like a model checkpoint, not an embedding")
    listed = ", ".join(shown(key, 40) for key in keys[:4]) + (", ..." if len(keys) > 4 else "")
    if sum(key.endswith((".weight", ".bias")) for key in keys) * 2 >= len(keys):
        return NotAnEmbeddingError(path, f"looks like a model's weights (a state_dict of {len(keys)} tensors: "
                                         f"{listed}), not an embedding")
    return NotAnEmbeddingError(path, f"holds {len(keys)} tensors ({listed}); an embedding holds one "
                                     "(or clip_l + clip_g for SDXL)")


def locate(data: Any, path: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Where the vectors are, in the WebUI's order: string_to_param, clip_l+clip_g, one tensor.

    Returns the layout name, the parts (``""`` or ``clip_l``/``clip_g`` -> tensor or TensorRef) and metadata.
    """
    if not isinstance(data, dict):
        raise NotAnEmbeddingError(path, f"holds a {type(data).__name__}, not an embedding dictionary")
    meta = {key: (_as_int if key == "step" else _as_text)(data.get(key)) for key in META_KEYS}
    if "string_to_param" in data:
        params = data["string_to_param"]
        if isinstance(params, dict) and isinstance(params.get("_parameters"), dict):
            params = params["_parameters"]  # a torch.nn.ParameterDict saved by torch 1.11
        if not isinstance(params, dict) or len(params) != 1:
            count = len(params) if isinstance(params, dict) else 0
            raise NotAnEmbeddingError(path, f"embedding file has multiple terms in it ({count}); "
                                            "only single-term files can be used")
        return "a1111", {"": next(iter(params.values()))}, meta
    tensors = _tensors(data)
    if all(key in tensors for key in SDXL_KEYS):
        return "sdxl", {key: tensors[key] for key in SDXL_KEYS}, meta
    if len(tensors) == 1:
        key = next(iter(tensors))
        layout = "emb_params" if key == "emb_params" else ("diffusers" if key.startswith("<") else "single")
        return layout, {"": tensors[key]}, meta
    if not tensors:
        raise NotAnEmbeddingError(path, "Couldn't identify this file as a textual inversion embedding "
                                        "or a diffusers concept (no tensors found)")
    raise _what_else(path, tensors)
