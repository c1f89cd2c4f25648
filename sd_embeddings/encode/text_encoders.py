"""The CLIP text encoders of each model family: layer choices and random-weight stand-ins (loading: loading.py).

Real weights come only from local paths (a diffusers folder, a text-encoder folder, or a single-file
``.safetensors`` checkpoint); nothing is downloaded. Encoders with the family's real configuration and seeded
random weights exist for tests only (values from random weights mean nothing to a user).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from ..records import Family

VOCAB_SIZE = 49408
SEED = 1234

@dataclass(frozen=True)
class EncoderSpec:
    """How one text encoder of a family is read out, as the WebUI does it."""

    key: str
    """Which part of an SDXL embedding feeds it (``clip_l``/``clip_g``); ``""`` for single-encoder families."""
    width: int
    hidden_index: int
    """Hidden state taken from the end: -1 last layer, -2 penultimate."""
    final_norm: bool
    """Apply the final layer norm to that hidden state (SD1, SD2 yes; SDXL no)."""
    pad_id: int | None
    """OpenCLIP encoders pad with 0 after the first end token; None keeps the end-id padding."""
    pooled: bool = False
    clip_skip: bool = False
    """Whether the CLIP-skip setting applies (SD1)."""
    clip_skip_option: bool = False
    """Whether the CLIP-skip setting applies when asked (the WebUI's ``sdxl_clip_l_skip``: SDXL CLIP-L)."""
    layers: int = 12
    heads: int = 12
    intermediate: int = 3072
    act: str = "quick_gelu"

CLIP_L = EncoderSpec("", 768, -1, True, None, clip_skip=True)
OPENCLIP_H = EncoderSpec("", 1024, -2, True, 0, layers=24, heads=16, intermediate=4096, act="gelu")
SDXL_L = EncoderSpec("clip_l", 768, -2, False, None, clip_skip_option=True)
SDXL_G = EncoderSpec("clip_g", 1280, -2, False, 0, pooled=True, layers=32, heads=20, intermediate=5120, act="gelu")
SPECS: dict[Family, tuple[EncoderSpec, ...]] = {
    Family.SD1: (CLIP_L,), Family.SD2: (OPENCLIP_H,), Family.SDXL: (SDXL_L, SDXL_G)}

@dataclass
class TextEncoders:
    family: Family
    encoders: list[tuple[EncoderSpec, Any]]
    """(spec, transformers CLIPTextModel or CLIPTextModelWithProjection) in output-concatenation order."""
    random_weights: bool
    source: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def width(self) -> int:
        return sum(spec.width for spec, _ in self.encoders)

def clip_skip_limit(family: Family) -> int:
    """The largest CLIP skip: the layer count of the encoder it applies to (CLIP-L: 12, as the WebUI's slider)."""
    return max((spec.layers for spec in SPECS[family] if spec.clip_skip or spec.clip_skip_option), default=12)

def check_clip_skip(family: Family, clip_skip: int) -> None:
    limit = clip_skip_limit(family)
    if not 1 <= clip_skip <= limit:
        note = " (SD2 ignores it, as the WebUI does)" if family is Family.SD2 else \
            f" (its CLIP-L text encoder has {limit} layers; 1 = the last one)"
        raise ValueError(f"clip skip {clip_skip} is out of range for {family.long_label}: use 1 to {limit}{note}")

def config_for(spec: EncoderSpec, layers: int | None = None) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=VOCAB_SIZE, hidden_size=spec.width, intermediate_size=spec.intermediate,
                          num_hidden_layers=layers or spec.layers, num_attention_heads=spec.heads,
                          max_position_embeddings=77, hidden_act=spec.act, projection_dim=spec.width,
                          bos_token_id=49406, eos_token_id=49407, pad_token_id=49407 if spec.pad_id is None else 0)

def random_encoders(family: Family, layers: int | None = None, seed: int = SEED) -> TextEncoders:
    """The family's encoders with real widths and seeded random weights; ``layers`` shrinks the depth (tests)."""
    import torch
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    encoders = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for spec in SPECS[family]:
            config = config_for(spec, layers)
            cls = CLIPTextModelWithProjection if spec.pooled else CLIPTextModel
            encoders.append((spec, cls(config).eval()))
    return TextEncoders(family, encoders, random_weights=True)

def fit_depth(spec: EncoderSpec, layers: int) -> EncoderSpec:
    """diffusers ships SD2's encoder cut to 23 layers, whose last layer is OpenCLIP's penultimate one."""
    if spec.hidden_index == -2 and spec.final_norm and layers == spec.layers - 1:
        return replace(spec, hidden_index=-1)
    return spec
