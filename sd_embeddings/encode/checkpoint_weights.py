"""Text-encoder weights out of a single-file Stable Diffusion checkpoint (``.safetensors``, LDM/SGM layout).

Only the text-encoder tensors are read (safetensors opens lazily). CLIP-L is stored in transformers' layout;
OpenCLIP encoders (SD2's ViT-H, SDXL's bigG) are converted: fused q/k/v projections split, names mapped.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..formats.checkpoint_header import SD1_PREFIX, SD2_PREFIX, SDXL_G_PREFIX, SDXL_L_PREFIX, family_of
from ..records import Family
from .text_encoders import SPECS, EncoderSpec, TextEncoders, config_for, fit_depth


def encoders_from_checkpoint(path: str | os.PathLike, family: Family | None = None) -> TextEncoders:
    from safetensors import safe_open

    with safe_open(os.fspath(path), framework="pt", device="cpu") as handle:
        keys = list(handle.keys())
        found = family_of(keys)
        if found is None or (family is not None and family is not found):
            wanted = family.long_label if family else "SD1/SD2/SDXL"
            raise ValueError(f"{path}: no {wanted} text encoder found in this checkpoint")
        prefixes = {Family.SD1: [SD1_PREFIX], Family.SD2: [SD2_PREFIX],
                    Family.SDXL: [SDXL_L_PREFIX, SDXL_G_PREFIX]}[found]
        encoders = []
        for spec, prefix in zip(SPECS[found], prefixes):
            tensors = {key[len(prefix):]: handle.get_tensor(key) for key in keys if key.startswith(prefix)}
            if prefix.endswith(".model."):
                tensors = openclip_to_transformers(tensors)
            encoders.append(_build(spec, tensors))
    return TextEncoders(found, encoders, random_weights=False, source=os.fspath(path))


def _build(spec: EncoderSpec, tensors: dict[str, torch.Tensor]) -> tuple[EncoderSpec, Any]:
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    # keys without the "text_model." level, which transformers 4.x has inside CLIPTextModel and 5.x does not
    plain = {key.removeprefix("text_model."): value.float() for key, value in tensors.items()}
    layers = 1 + max(int(key.split(".")[2]) for key in plain if key.startswith("encoder.layers."))
    spec = fit_depth(spec, layers)
    cls = CLIPTextModelWithProjection if spec.pooled else CLIPTextModel
    model = cls(config_for(spec, layers)).eval()
    own = model.state_dict()
    state = {}
    for key in own:
        short = key.removeprefix("text_model.")
        if short in plain:
            state[key] = plain[short]
    missing = [key for key in own if key not in state and not key.endswith("position_ids")]
    if missing:
        raise ValueError(f"checkpoint lacks {len(missing)} text-encoder tensors, e.g. {missing[:3]}")
    model.load_state_dict(state, strict=False)
    return spec, model


def openclip_to_transformers(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenCLIP text-tower names and fused attention -> transformers ``CLIPTextModel`` names (no ``text_model.``)."""
    out: dict[str, torch.Tensor] = {}
    simple = {"token_embedding.weight": "embeddings.token_embedding.weight",
              "positional_embedding": "embeddings.position_embedding.weight",
              "ln_final.weight": "final_layer_norm.weight", "ln_final.bias": "final_layer_norm.bias"}
    parts = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
             "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
    for key, value in tensors.items():
        if key in simple:
            out[simple[key]] = value
        elif key == "text_projection":
            out["text_projection.weight"] = value.t().contiguous()  # OpenCLIP multiplies x @ P
        elif key.startswith("transformer.resblocks."):
            _, _, index, rest = key.split(".", 3)
            base = f"encoder.layers.{index}."
            if rest.startswith("attn.in_proj_"):
                kind = rest.rsplit("_", 1)[1]  # weight | bias
                for name, piece in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                    out[f"{base}self_attn.{name}.{kind}"] = piece.contiguous()
            else:
                module, kind = rest.rsplit(".", 1)
                if module in parts:
                    out[f"{base}{parts[module]}.{kind}"] = value
    return out
