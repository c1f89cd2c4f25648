"""Helpers for the prompt/conditioning tests: a real library over real files written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import torch
from factories import write_a1111_pt, write_safetensors

from sd_embeddings.library import Library
from sd_embeddings.records import Family


def library_with(folder: Path, files: dict[str, torch.Tensor | dict[str, torch.Tensor]],
                 family: Family | None = Family.SD1) -> Library:
    """``{"sub/Name": tensor}``: safetensors for SDXL dicts and names ending in ``.st``, A1111 ``.pt`` otherwise."""
    for name, vec in files.items():
        if isinstance(vec, dict):
            write_safetensors(folder / f"{name}.safetensors", vec)
        elif name.endswith(".st"):
            write_safetensors(folder / f"{name[:-3]}.safetensors", {"emb_params": vec})
        else:
            write_a1111_pt(folder / f"{name}.pt", vec)
    library = Library([folder], family=family, background_hashing=False)
    library.refresh()
    return library
