"""Text encoders ready to use: real weights from a local path, loaded once and kept; random ones for tests.

Real weights come only from local paths (a diffusers folder, a text-encoder folder, or a single-file
``.safetensors`` checkpoint); nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from ..formats.logs import get_logger
from ..records import Family
from .text_encoders import SPECS, TextEncoders, fit_depth, random_encoders

logger = get_logger(__name__)


def load_encoders(path: str | os.PathLike, family: Family | None = None) -> TextEncoders:
    """Real weights from a local diffusers folder, a text-encoder folder, or a single-file checkpoint."""
    path = Path(path)
    if path.is_dir():
        return _from_folder(path, family)
    if path.suffix.lower() == ".safetensors":
        from .checkpoint_weights import encoders_from_checkpoint  # torch: only when a model is asked for

        return encoders_from_checkpoint(path, family)
    raise ValueError(f"{path}: expected a model folder or a .safetensors checkpoint")


def _from_folder(path: Path, family: Family | None) -> TextEncoders:
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    folders = [path / "text_encoder", path / "text_encoder_2"] if (path / "text_encoder").is_dir() else [path]
    folders = [folder for folder in folders if (folder / "config.json").is_file()]
    if not folders:
        raise ValueError(f"{path}: no text_encoder/config.json (diffusers folder) nor config.json found")
    widths = [json.loads((folder / "config.json").read_text())["hidden_size"] for folder in folders]
    found = Family.SDXL if widths == [768, 1280] else {768: Family.SD1, 1024: Family.SD2}.get(widths[0])
    if found is None or (family is not None and family is not found):
        raise ValueError(f"{path}: text encoder widths {widths} do not fit {family.long_label if family else 'any'}"
                         " model family")
    encoders = []
    for spec, folder in zip(SPECS[found], folders):
        cls = CLIPTextModelWithProjection if spec.pooled else CLIPTextModel
        model = cls.from_pretrained(folder, local_files_only=True).eval()
        encoders.append((fit_depth(spec, model.config.num_hidden_layers), model))
    return TextEncoders(found, encoders, random_weights=False, source=str(path))


_CACHE: dict[tuple[Family, str | None, int | None], TextEncoders] = {}
_CACHE_LOCK = threading.Lock()


def loaded(model: str | os.PathLike) -> TextEncoders | None:
    """The encoders already loaded from ``model`` (any family), or None: callers say "loading..." only then."""
    path = os.path.abspath(model)
    with _CACHE_LOCK:
        return next((encoders for key, encoders in _CACHE.items() if key[1] == path), None)


def encoders_for(family: Family | None, model: str | os.PathLike | None = None,
                 layers: int | None = None) -> TextEncoders:
    """Cached per (family, model path, depth): the first call builds or loads, later calls are free.

    Without ``model`` this builds random-weight encoders: tests only (``encoding`` never does it for users)."""
    if model:
        found = loaded(model)
        if found is not None and family in (None, found.family):
            return found
    key = (family, os.path.abspath(model) if model else None, layers if model is None else None)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is None:
            if model:
                cached = load_encoders(model, family)
                key = (cached.family, key[1], None)
            else:
                cached = random_encoders(family or Family.SD1, layers)
            logger.info("Text encoders ready: %s (%s)", cached.family.value, model or "random weights")
            _CACHE[key] = cached
    return cached
