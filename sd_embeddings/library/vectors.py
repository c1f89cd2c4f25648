"""What an embedding's vectors say: per-vector norms and flags, a fingerprint of the vectors, nearest vocabulary tokens.

- ``vector_stats(tensor)``: the norm of each vector (row), and which rows are zero or hold NaN/infinite values.
- ``fingerprint(data)``: a sha256 of the vectors themselves (part names, shapes, values rounded to float16), so the
  same embedding saved as ``EasyNegative.pt`` and ``EasyNegative.safetensors``, in float32 or float16, has one
  fingerprint while the files' hashes differ. Values that differ beyond float16 rounding are other vectors.
- ``nearest_tokens(vectors, table, k)``: for each vector, the ``k`` rows of a text encoder's token-embedding table
  with the highest cosine similarity. The table (49,408 x 768 for CLIP-L, up to x 1280 for OpenCLIP-G) is read in
  blocks of ``BLOCK_ROWS`` rows converted to float32 one at a time, so the extra memory is one block (about 40 MB)
  whatever the table's dtype or device, and the work is rows x vectors x width multiply-adds, with at most
  ``MAX_NEAREST_VECTORS`` vectors per call.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..records import EmbeddingData

BLOCK_ROWS = 8192
MAX_NEAREST_VECTORS = 75
"""One 75-token chunk: a longer embedding does not fit a prompt chunk anyway; its first 75 vectors are looked up."""
DEFAULT_K = 5
FINGERPRINT_CHARS = 64


@dataclass
class TokenTable:
    """A text encoder's token embeddings, by vector width (768 CLIP-L, 1024 OpenCLIP-H, 1280 OpenCLIP-G)."""

    tables: dict[int, Any]
    """width -> tensor ``[vocabulary, width]`` (any float dtype, any device)."""
    token_text: Callable[[int], str]
    source: str
    """Where the table comes from, for the dialog (``the WebUI's model``, a local checkpoint's path)."""


class VocabularyError(Exception):
    """No token table can be had (no model loaded, no local model given, it failed to load); a one-line reason."""


class Vocabulary(Protocol):
    """Where a host gets a text encoder's token embeddings for ``nearest_tokens``."""

    def state(self) -> tuple[str, str]:
        """``("ready", source)``: a table is at hand; ``("loadable", what)``: ``table()`` loads one first (seconds);
        ``("none", why)``: none can be had."""

    def table(self) -> TokenTable:
        """The token table, loading it if need be; raises ``VocabularyError``."""


def parts_of(data: EmbeddingData) -> dict[str, Any]:
    """``{"": tensor}`` for SD1/SD2, ``{"clip_l": ..., "clip_g": ...}`` for SDXL."""
    return dict(data.vec) if isinstance(data.vec, dict) else {"": data.vec}


def vector_stats(tensor: Any) -> dict[str, Any]:
    """``{"norms": [float | None], "nonfinite": [row indexes], "zero": [row indexes]}`` (rows from 0).

    A row with a NaN or infinite value has no norm (None), whatever its other values."""
    import torch

    rows = tensor.detach().reshape(-1, tensor.shape[-1]).to(torch.float32).cpu()
    finite = torch.isfinite(rows)
    bad = (~finite).any(dim=1)
    norms = torch.where(finite, rows, torch.zeros_like(rows)).norm(dim=1)
    values = [None if flag else round(float(n), 4) for n, flag in zip(norms.tolist(), bad.tolist())]
    return {"norms": values, "nonfinite": [i for i, flag in enumerate(bad.tolist()) if flag],
            "zero": [i for i, n in enumerate(values) if n == 0.0]}


def fingerprint(data: EmbeddingData) -> str:
    """The vectors' sha256 (see the module docstring): parts in name order, each with its shape."""
    import torch

    digest = hashlib.sha256()
    for key, tensor in sorted(parts_of(data).items()):
        half = tensor.detach().to(torch.float32).cpu().contiguous().to(torch.float16)
        digest.update(f"{key}:{'x'.join(str(d) for d in half.shape)};".encode())
        digest.update(half.view(torch.int16).numpy().astype("<i2").tobytes())
    return digest.hexdigest()


def nearest_tokens(vectors: Any, table: Any, k: int = DEFAULT_K) -> list[list[tuple[int, float]] | None]:
    """For each vector (row), the ``k`` table rows of highest cosine similarity, best first: ``(row, cosine)``.

    A zero or non-finite vector has no direction: its entry is None. Only the first ``MAX_NEAREST_VECTORS``
    vectors are looked up."""
    import torch

    rows = vectors.detach().reshape(-1, vectors.shape[-1])[:MAX_NEAREST_VECTORS].to(torch.float32)
    rows = rows.to(table.device)
    norms = rows.norm(dim=1)
    usable = torch.isfinite(norms) & (norms > 0)
    unit = torch.where(usable[:, None], rows / norms.clamp_min(1e-12)[:, None], torch.zeros_like(rows))
    k = max(1, min(k, int(table.shape[0])))
    best = torch.full((len(rows), k), -math.inf, device=table.device)
    best_ids = torch.zeros((len(rows), k), dtype=torch.long, device=table.device)
    with torch.no_grad():
        for start in range(0, int(table.shape[0]), BLOCK_ROWS):
            block = table[start:start + BLOCK_ROWS].detach().to(torch.float32)
            scores = (unit @ block.T) / block.norm(dim=1).clamp_min(1e-12)
            merged = torch.cat([best, scores], dim=1)
            ids = torch.cat([best_ids, torch.arange(start, start + len(block), device=table.device)
                             .expand(len(rows), -1)], dim=1)
            best, order = merged.topk(k, dim=1)
            best_ids = ids.gather(1, order)
    found: list[list[tuple[int, float]] | None] = []
    for i, ok in enumerate(usable.tolist()):
        found.append([(int(t), round(float(s), 4)) for t, s in zip(best_ids[i].tolist(), best[i].tolist())]
                     if ok else None)
    return found
