"""The ``Host`` for AUTOMATIC1111's prompt path: ``model_hijack.embedding_db``, ``sd_hijack_clip``, ``processing``.

It fits where these classes exist, whatever the version: the class that defines ``tokenize_line``
(``sd_hijack_clip.TextConditionalModel`` since 1.10, ``FrozenCLIPEmbedderWithCustomWordsBase`` before it and in forks
that kept it), ``processing.StableDiffusionProcessing`` with ``cached_params`` and ``setup_conds``,
``sd_hijack.model_hijack.embedding_db`` and ``modules.patches``. Every ``modules`` import is inside a method.
"""

from __future__ import annotations

from typing import Any

from .host import Hooks, Patch, Probe, processing_patches

LINE_OWNERS = ("TextConditionalModel", "FrozenCLIPEmbedderWithCustomWordsBase")
CLIP_VOCABULARY = 49408
"""Rows of every CLIP/OpenCLIP token table (SD1, SD2, SDXL); position tables (77 rows) are not vocabularies."""


def line_owner(sd_hijack_clip: Any) -> type | None:
    """The first of ``LINE_OWNERS`` that defines ``tokenize_line`` itself (the one to wrap)."""
    for name in LINE_OWNERS:
        owner = getattr(sd_hijack_clip, name, None)
        if isinstance(owner, type) and "tokenize_line" in vars(owner):
            return owner
    return None


class A1111Host:
    name = "a1111"

    def probe(self) -> Probe:
        looked = (f"modules.sd_hijack_clip.{' or '.join(LINE_OWNERS)} with tokenize_line, "
                  "modules.processing.StableDiffusionProcessing.cached_params/setup_conds, "
                  "modules.sd_hijack.model_hijack.embedding_db, modules.patches")
        try:
            from modules import patches, processing, sd_hijack, sd_hijack_clip  # noqa: F401
        except ImportError as e:
            return Probe(False, f"{looked}; {e}")
        owner = line_owner(sd_hijack_clip)
        base = getattr(processing, "StableDiffusionProcessing", None)
        if owner is None or not all(hasattr(base, name) for name in ("cached_params", "setup_conds")) or \
                not hasattr(sd_hijack.model_hijack, "embedding_db"):
            return Probe(False, looked)
        return Probe(True, f"{owner.__name__}.tokenize_line")

    def patch_targets(self, hooks: Hooks) -> list[Patch]:
        from modules import processing, sd_hijack_clip

        owner = line_owner(sd_hijack_clip)
        if owner is None:
            raise AttributeError("no sd_hijack_clip class defines tokenize_line")
        return [(owner, "tokenize_line", hooks.tokenize_line), *processing_patches(processing, hooks)]

    def install_database(self, db: Any) -> Any:
        from modules import sd_hijack

        current = sd_hijack.model_hijack.embedding_db
        sd_hijack.model_hijack.embedding_db = db
        return current

    def uninstall_database(self, db: Any, original: Any) -> None:
        from modules import sd_hijack

        if original is not None and sd_hijack.model_hijack.embedding_db is db:
            sd_hijack.model_hijack.embedding_db = original

    def webui_embedding_dirs(self) -> list[str]:
        from modules import sd_hijack, shared

        return list(getattr(sd_hijack.model_hijack.embedding_db, "embedding_dirs", {}) or
                    [shared.cmd_opts.embeddings_dir])

    def embeddings_dir(self) -> str:
        from modules import shared

        return str(shared.cmd_opts.embeddings_dir)

    def data_dir(self) -> str:
        from modules import paths

        return str(paths.data_path)

    def current_model(self) -> Any | None:
        from modules import sd_models

        model = getattr(sd_models.model_data, "sd_model", None)  # ``shared.sd_model`` would load one
        return model if model is not None and getattr(model, "cond_stage_model", None) is not None else None

    def selected_checkpoint(self) -> str | None:
        return selected_checkpoint_file()

    def tokenize(self, model: Any, texts: list[str]) -> list[list[int]]:
        return [list(ids) for ids in model.cond_stage_model.tokenize(texts)]

    def token_embeddings(self, model: Any) -> dict[int, Any]:
        """Every ``torch.nn.Embedding`` with CLIP's vocabulary size under the text conditioning (SD1/SD2: the
        hijacked ``cond_stage_model``; SDXL: its conditioner, which 1.10 also names ``cond_stage_model``), by width.
        The hijack's ``EmbeddingsWithFixes`` keeps the original table as ``.wrapped``, which is found the same way.
        """
        import torch

        found: dict[int, Any] = {}
        for module in model.cond_stage_model.modules():
            if isinstance(module, torch.nn.Embedding) and module.num_embeddings == CLIP_VOCABULARY:
                found.setdefault(int(module.embedding_dim), module.weight)
        return found

    def expected_shape(self, model: Any) -> int:
        return int(model.cond_stage_model.encode_embedding_init_text(",", 1).shape[1])

    def embedding_base(self) -> type:
        from modules.textual_inversion.textual_inversion import Embedding

        return Embedding

    def make_fix(self, offset: int, embedding: Any) -> Any:
        from modules.sd_hijack_clip import PromptChunkFix

        return PromptChunkFix(offset, embedding)

    def device(self) -> Any:
        from modules import devices

        return devices.device

    def hashing(self) -> bool:
        from modules import shared

        return not getattr(shared.cmd_opts, "no_hashing", False)

    def write_generation_param(self, p: Any, key: str, value: str | None) -> None:
        """Into ``p`` and into the hijack's parameters, which the WebUI merges into ``p`` after ``setup_conds``
        (``None`` removes the key from both)."""
        from modules import sd_hijack

        for params in (sd_hijack.model_hijack.extra_generation_params, getattr(p, "extra_generation_params", None)):
            if isinstance(params, dict):
                set_or_remove(params, key, value)


def selected_checkpoint_file() -> str | None:
    """The file of the checkpoint the WebUI will load (its setting, else the first found, as
    ``sd_models.select_checkpoint`` picks it without printing); None when there is none."""
    from modules import sd_models, shared

    info = sd_models.checkpoint_aliases.get(getattr(shared.opts, "sd_model_checkpoint", None))
    if info is None:
        info = next(iter(sd_models.checkpoints_list.values()), None)
    return getattr(info, "filename", None)


def set_or_remove(params: dict, key: str, value: str | None) -> None:
    """``params[key] = value``, or with ``None`` the key taken out (a parameter the infotext must not show)."""
    if value is None:
        params.pop(key, None)
    else:
        params[key] = value
