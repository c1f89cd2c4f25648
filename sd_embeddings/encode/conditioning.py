"""Placements + transformers CLIP text encoders -> the conditioning tensor, as the WebUI computes it.

Embedding rows replace the placeholder rows in the output of the encoder's token-embedding layer (a forward
hook, like the WebUI's ``EmbeddingsWithFixes``), so position embeddings are added afterwards by CLIP itself and
the same code works with transformers 4.30 and 5.x, whose ``CLIPTextModel.forward`` no longer takes
``inputs_embeds``. Weights scale the transformer output ("Original" emphasis: multiply, then restore the mean).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ..prompt.chunks import Chunk, PromptTokens
from ..records import EmbeddingData, Entry
from .text_encoders import EncoderSpec, TextEncoders

EMPHASIS_MODES = ("Original", "No norm", "Ignore", "None")

VectorSource = Callable[[Entry], EmbeddingData]


@dataclass
class Conditioning:
    tensor: torch.Tensor
    """[1, 77 * chunks, width]; SDXL: CLIP-L 768 and bigG 1280 concatenated to 2048."""
    pooled: torch.Tensor | None = None
    """SDXL only: bigG's projected pooled output of the first chunk, [1, 1280]."""

    @property
    def shape(self) -> list[int]:
        return list(self.tensor.shape)

    def checksum(self) -> float:
        """Sum of absolute values in float64, rounded: tells two conditionings apart at a glance.

        (A plain sum is useless: a final layer norm makes every row sum to about zero.)
        """
        return round(float(self.tensor.double().abs().sum()), 4)


def token_embedding_of(model: Any) -> torch.nn.Module:
    text_model = getattr(model, "text_model", model)  # transformers 4.x nests it; 5.x's CLIPTextModel is it
    return text_model.embeddings.token_embedding


def final_norm_of(model: Any) -> torch.nn.Module:
    return getattr(model, "text_model", model).final_layer_norm


def rows_for(data: EmbeddingData, spec: EncoderSpec) -> torch.Tensor:
    """The vectors one encoder takes from an embedding: SDXL parts by key, a single tensor as is."""
    vec = data.vec
    if isinstance(vec, dict):
        if spec.key not in vec:
            raise ValueError(f"embedding has parts {sorted(vec)}, the {spec.width}-wide encoder needs "
                             f"{spec.key or 'a single tensor'}")
        vec = vec[spec.key]
    elif spec.key:
        raise ValueError(f"a single-tensor embedding cannot feed SDXL's {spec.key} encoder")
    if vec.shape[-1] != spec.width:
        raise ValueError(f"embedding vectors are {vec.shape[-1]} wide, the encoder is {spec.width} wide")
    return vec


@contextlib.contextmanager
def substituted_rows(model: Any, fixes: list[list[tuple[int, torch.Tensor]]]) -> Iterator[None]:
    """While active, row ``offset`` onwards of batch item ``i`` of the token embeddings is replaced by the tensor."""

    def hook(_module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        for item, item_fixes in enumerate(fixes):
            for row, vectors in item_fixes:
                count = min(vectors.shape[0], output.shape[1] - row - 1)  # never over the end token
                output[item, row:row + count] = vectors[:count].to(output.dtype)
        return output

    handle = token_embedding_of(model).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def apply_emphasis(z: torch.Tensor, weights: torch.Tensor, mode: str = "Original") -> torch.Tensor:
    """Per chunk: z [chunks, 77, C], weights [chunks, 77]."""
    if mode in ("Ignore", "None"):
        return z
    if mode not in EMPHASIS_MODES:
        raise ValueError(f"unknown emphasis mode {mode!r}; expected one of {', '.join(EMPHASIS_MODES)}")
    original_mean = z.mean(dim=(1, 2), keepdim=True)
    z = z * weights[..., None].to(z.dtype)
    if mode == "Original":
        z = z * (original_mean / z.mean(dim=(1, 2), keepdim=True))
    return z


def chunk_ids(chunks: list[Chunk], spec: EncoderSpec, eos_id: int) -> torch.Tensor:
    ids = torch.tensor([chunk.tokens for chunk in chunks], dtype=torch.long)
    if spec.pad_id is not None:
        # OpenCLIP pads with 0: everything after the first end token (the WebUI's process_tokens does the same)
        first_end = (ids == eos_id).int().argmax(dim=1, keepdim=True)
        after = torch.arange(ids.shape[1])[None, :] > first_end
        ids = ids.masked_fill(after, spec.pad_id)
    return ids


def run_encoder(model: Any, spec: EncoderSpec, ids: torch.Tensor, fixes: list[list[tuple[int, torch.Tensor]]],
                clip_skip: int = 1, sdxl_clip_l_skip: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One encoder over a batch of chunks -> (hidden states as the family reads them, pooled or None).

    ``clip_skip`` applies to SD1's encoder when > 1, and to SDXL's CLIP-L when ``sdxl_clip_l_skip`` is on (then
    always, as the WebUI's option: CLIP skip 1 reads the last layer instead of the penultimate one).
    """
    with torch.no_grad(), substituted_rows(model, fixes):
        out = model(input_ids=ids, output_hidden_states=True)
    if (spec.clip_skip and clip_skip > 1) or (spec.clip_skip_option and sdxl_clip_l_skip):
        reachable = len(out.hidden_states)  # a local model may be shallower than the family's 12 layers
        if not 1 <= clip_skip <= reachable:
            raise ValueError(f"clip skip {clip_skip} is out of range for this text encoder: use 1 to {reachable}")
        index = -clip_skip
    else:
        index = spec.hidden_index
    if index == -1 and spec.final_norm:
        z = out.last_hidden_state
    else:
        z = out.hidden_states[index]
        if spec.final_norm:
            with torch.no_grad():
                z = final_norm_of(model)(z)
    pooled = getattr(out, "text_embeds", None) if spec.pooled else None
    return z, pooled


def encode(tokens: PromptTokens, encoders: TextEncoders, vectors: VectorSource, *, eos_id: int = 49407,
           clip_skip: int = 1, emphasis: str = "Original", sdxl_clip_l_skip: bool = False) -> Conditioning:
    """The conditioning of one tokenized prompt: each encoder gets its own rows, outputs are concatenated."""
    chunks = tokens.chunks
    data = {id(p.entry): vectors(p.entry) for p in tokens.placements}
    weights = torch.tensor([chunk.weights for chunk in chunks], dtype=torch.float32)
    outputs, pooled = [], None
    with encoders.lock:
        for spec, model in encoders.encoders:
            fixes = [[(p.offset + 1, rows_for(data[id(p.entry)], spec)[p.first_row:p.first_row + p.vectors])
                      for p in chunk.placements] for chunk in chunks]
            z, pool = run_encoder(model, spec, chunk_ids(chunks, spec, eos_id), fixes, clip_skip, sdxl_clip_l_skip)
            outputs.append(apply_emphasis(z, weights, emphasis))
            if pool is not None:
                pooled = pool[:1]
    z = torch.cat(outputs, dim=-1)  # SDXL: [chunks, 77, 768 + 1280]
    return Conditioning(z.reshape(1, -1, z.shape[-1]), pooled)
