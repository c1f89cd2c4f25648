"""Writers for real embedding files of every format, used by the tests (no binary fixtures are committed)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from sd_embeddings.formats import decoding as formats
from sd_embeddings.records import EmbeddingData


def vectors(rows: int = 2, width: int = 768, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, width, generator=torch.Generator().manual_seed(seed))


def sdxl_vectors(rows: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    return {"clip_l": vectors(rows, 768, seed), "clip_g": vectors(rows, 1280, seed + 1)}


def write_a1111_pt(path: Path, vec: torch.Tensor, legacy: bool = False, parameter_dict: bool = False,
                   **extra: object) -> Path:
    """The WebUI's own .pt layout (``string_to_param``), zip or legacy pickle, optionally as a ParameterDict."""
    params: object = {"*": vec}
    if parameter_dict:
        params = torch.nn.ParameterDict({"*": torch.nn.Parameter(vec.clone())})
    data = {"string_to_token": {"*": 265}, "string_to_param": params, "name": path.stem, "step": 100,
            "sd_checkpoint": "abc123", "sd_checkpoint_name": "model", **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path, _use_new_zipfile_serialization=not legacy)
    return path


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


def write_diffusers_bin(path: Path, token: str, vec: torch.Tensor) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({token: vec}, path)
    return path


def write_image(path: Path, vec: torch.Tensor | dict[str, torch.Tensor], name: str, carrier: str = "text") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(formats.encode_image(EmbeddingData(vec, "test"), name, carrier))
    return path


def touch_mtime(path: Path, delta_ns: int = 10**9) -> None:
    """Move a file's mtime so size+mtime change detection sees an in-place rewrite even within one tick."""
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + delta_ns))


def count_folder_listings(monkeypatch) -> list[str]:
    """The folders a scan lists from now on (each listing appended), counted at ``scanning._files_in``."""
    from sd_embeddings.library import scanning

    listed: list[str] = []
    real = scanning._files_in

    def counted(walk, place, folder, *rest):
        listed.append(folder)
        return real(walk, place, folder, *rest)

    monkeypatch.setattr(scanning, "_files_in", counted)
    return listed
