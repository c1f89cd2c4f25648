"""Token tables whose rows for chosen words are known vectors, so "nearest tokens" has a right answer to check.

``crafted_table(words)`` -> ``[49408, 768]`` float tensor: small random rows, except each word's token row, set to
the given vector. ``crafted_sd1_checkpoint(path, words)`` writes a real single-file SD1 checkpoint (a 1-layer CLIP-L
text encoder with random weights, real layout) whose token embeddings are such a table.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sd_embeddings.prompt import tokenizer

VOCABULARY = 49408


def token_id(word: str) -> int:
    (found,) = tokenizer.bundled().encode(word)  # one token: "cat" -> "cat</w>"
    return found


def crafted_table(words: dict[str, torch.Tensor], width: int = 768, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    table = torch.randn(VOCABULARY, width, generator=torch.Generator().manual_seed(11)) * 0.01
    for word, vec in words.items():
        table[token_id(word)] = vec
    return table.to(dtype)


def crafted_sd1_checkpoint(path: Path, words: dict[str, torch.Tensor]) -> Path:
    from safetensors.torch import save_file

    from sd_embeddings.encode.checkpoint_weights import SD1_PREFIX
    from sd_embeddings.encode.text_encoders import random_encoders
    from sd_embeddings.records import Family

    model = random_encoders(Family.SD1, layers=1, seed=3).encoders[0][1]
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(crafted_table(words))
    save_file({SD1_PREFIX + k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path
