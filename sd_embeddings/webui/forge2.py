"""The ``Host`` for the Forge2 backend: lllyasviel's Forge ``main`` and Forge Neo.

There the prompt path is ``backend/text_processing``: a CLIP engine class (``ClassicTextProcessingEngine`` in
``classic_engine``; Neo renamed it ``ClipEngine`` in ``sd_engine``) with ``tokenize_line``, and each engine builds its
own ``EmbeddingDatabase`` from the name in its module's namespace. ``modules.sd_hijack.model_hijack`` is a stub
without ``embedding_db``; the Textual Inversion page and the API each build an A1111-style database of their own
(``modules.textual_inversion.textual_inversion.EmbeddingDatabase``); ``processing`` never reloads embeddings
(``# todo: reload ti``) and merges ``sd_model.extra_generation_params`` (where the engines' ``TI`` names land) into
``p`` right after ``setup_conds``. What Forge shares with A1111 (``modules.patches``, ``script_callbacks``,
``processing.cached_params``/``setup_conds``, the extra-networks page machinery) is used as on A1111.

The host puts one database under all of them: the engine modules' ``EmbeddingDatabase`` becomes a factory of
``forge2_engines.EngineDatabase`` views, the tab/API class a factory returning the shared database, engines already
built are re-pointed, and, when the setting asks, ``model_hijack.embedding_db`` is published for extensions that
expect it. ``uninstall_database`` undoes all of it. Every ``modules``/``backend`` import is inside a method.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..formats.logs import get_logger
from . import forge2_engines as engines
from . import settings
from .a1111 import CLIP_VOCABULARY, selected_checkpoint_file, set_or_remove
from .host import Hooks, Patch, Probe, processing_patches

logger = get_logger(__name__)
LAYOUTS = (("backend.text_processing.classic_engine", "ClassicTextProcessingEngine"),
           ("backend.text_processing.sd_engine", "ClipEngine"))
"""``(module, engine class)`` of Forge main, then Neo."""
TI_MODULE = "modules.textual_inversion.textual_inversion"
SHIM = settings.key("embedding_db_shim")


def found_layouts() -> list[tuple[Any, type]]:
    """The engine modules present, with their engine class, when it has ``tokenize_line`` and the module names
    ``EmbeddingDatabase`` and ``PromptChunkFix`` (what the host replaces and builds)."""
    found = []
    for module_name, class_name in LAYOUTS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        engine = getattr(module, class_name, None)
        if isinstance(engine, type) and "tokenize_line" in vars(engine) and \
                all(hasattr(module, name) for name in ("EmbeddingDatabase", "PromptChunkFix")):
            found.append((module, engine))
    return found


class Forge2Host:
    name = "forge2"
    webui_reloads_embeddings = False
    names_param = "TI"

    def probe(self) -> Probe:
        looked = (" or ".join(f"{module}.{cls}" for module, cls in LAYOUTS) +
                  " with tokenize_line beside EmbeddingDatabase and PromptChunkFix, "
                  "modules.processing.StableDiffusionProcessing.cached_params/setup_conds, "
                  "modules.sd_models.model_data, modules.patches")
        try:
            from modules import patches, processing, sd_models  # noqa: F401
        except ImportError as e:
            return Probe(False, f"{looked}; {e}")
        layouts = found_layouts()
        base = getattr(processing, "StableDiffusionProcessing", None)
        if not layouts or not all(hasattr(base, name) for name in ("cached_params", "setup_conds")) or \
                not hasattr(sd_models, "model_data"):
            return Probe(False, looked)
        return Probe(True, ", ".join(f"{engine.__module__}.{engine.__name__}.tokenize_line"
                                     for _module, engine in layouts))

    def patch_targets(self, hooks: Hooks) -> list[Patch]:
        from modules import processing

        lines: list[Patch] = [(engine, "tokenize_line", hooks.tokenize_line) for _module, engine in found_layouts()]
        return [*lines, *processing_patches(processing, hooks)]

    # -- the database ---------------------------------------------------------------------------------------------

    def install_database(self, db: Any) -> Any:
        """Factories in place of the WebUI's classes, the current model's engines re-pointed, the shim as set."""
        shared_db = lambda: db  # noqa: E731
        for module, _engine in found_layouts():
            module.EmbeddingDatabase = engines.view_factory(shared_db, engines.stock_of(module.EmbeddingDatabase))
        ti = self._ti_module()
        if ti is not None and hasattr(ti, "EmbeddingDatabase"):
            ti.EmbeddingDatabase = engines.shared_factory(shared_db, engines.stock_of(ti.EmbeddingDatabase))
        for engine in engines.engines_of(self.current_model()):
            engines.adopt(engine, db)
        self.apply_shim(db)
        return None

    def uninstall_database(self, db: Any, original: Any) -> None:
        stocks: list[tuple[type, type]] = []
        for module, engine_class in found_layouts():
            module.EmbeddingDatabase = engines.stock_of(module.EmbeddingDatabase)
            stocks.append((engine_class, module.EmbeddingDatabase))
        ti = self._ti_module()
        if ti is not None and hasattr(ti, "EmbeddingDatabase"):
            ti.EmbeddingDatabase = engines.stock_of(ti.EmbeddingDatabase)
        for engine in engines.engines_of(self.current_model()):
            stock = next((cls for engine_class, cls in stocks if isinstance(engine, engine_class)), None)
            engines.release(engine, stock, self.embeddings_dir())
        self.apply_shim(db, on=False)

    def apply_shim(self, db: Any, on: bool | None = None) -> None:
        """``model_hijack.embedding_db`` = the shared database while the (opt-in) setting is on; removed when off,
        as Forge's stub has no such attribute. Neo has no ``modules.sd_hijack`` at all: nothing to publish on."""
        try:
            from modules import sd_hijack
        except ImportError:
            if on is None and settings.option(SHIM):
                logger.warning("Textual inversion: this WebUI has no modules.sd_hijack; the setting \"%s\" has no "
                               "effect here", settings.OPTIONS[SHIM][1])
            return
        hijack = sd_hijack.model_hijack
        wanted = bool(settings.option(SHIM)) if on is None else on
        if wanted:
            hijack.embedding_db = db
        elif getattr(hijack, "embedding_db", None) is db:
            del hijack.embedding_db

    @staticmethod
    def _ti_module() -> Any:
        try:
            return importlib.import_module(TI_MODULE)
        except ImportError:
            return None

    # -- folders and model --------------------------------------------------------------------------------------

    def webui_embedding_dirs(self) -> list[str]:
        return [self.embeddings_dir()]

    def embeddings_dir(self) -> str:
        from modules import shared

        return str(shared.cmd_opts.embeddings_dir)

    def data_dir(self) -> str:
        from modules import paths

        return str(paths.data_path)

    def current_model(self) -> Any | None:
        """The loaded model when it has a CLIP engine (not Forge's ``FakeInitialModel`` before the first load)."""
        from modules import sd_models

        model = getattr(sd_models.model_data, "sd_model", None)
        return model if engines.engines_of(model) else None

    def selected_checkpoint(self) -> str | None:
        """Forge's own pick once its UI has made it (``model_data.forge_loading_parameters``, set after the first
        scan has started), else the checkpoint setting as on A1111: Forge loads the model only at the first
        generation, and until then the listing and the summary go by this file's header."""
        from modules import sd_models

        loading = getattr(sd_models.model_data, "forge_loading_parameters", None) or {}
        return getattr(loading.get("checkpoint_info"), "filename", None) or selected_checkpoint_file()

    def tokenize(self, model: Any, texts: list[str]) -> list[list[int]]:
        """With the primary engine's tokenizer, as Forge's database tokenizes names (no special tokens)."""
        engine = engines.engines_of(model)[0]
        view = engine.embeddings
        if isinstance(view, engines.EngineDatabase):
            return [view.name_ids(text) for text in texts]
        return [list(ids) for ids in engine.tokenizer(texts, truncation=False, add_special_tokens=False)["input_ids"]]

    def token_embeddings(self, model: Any) -> dict[int, Any]:
        """Each CLIP engine's token table by width (768 CLIP-L, 1024 OpenCLIP-H, 1280 OpenCLIP-G): the
        ``nn.Embedding`` Forge's ``CLIPEmbeddingForTextualInversion`` wraps, CLIP's vocabulary long."""
        import torch

        found: dict[int, Any] = {}
        for engine in engines.engines_of(model):
            module = engines.token_embedding(engine)
            table = getattr(module, "wrapped", module)
            if isinstance(table, torch.nn.Embedding) and table.num_embeddings == CLIP_VOCABULARY:
                found.setdefault(int(table.embedding_dim), table.weight)
        return found

    def expected_shape(self, model: Any) -> int:
        """The primary engine's width, as Forge declares it when building the engine (768, 1024 or 2048)."""
        return int(getattr(engines.engines_of(model)[0].embeddings, "expected_shape", -1))

    # -- objects and parameters --------------------------------------------------------------------------------------

    def embedding_base(self) -> type:
        return importlib.import_module(TI_MODULE).Embedding

    def make_fix(self, offset: int, embedding: Any) -> Any:
        module, _engine = found_layouts()[0]
        return module.PromptChunkFix(offset, embedding)

    def device(self) -> Any:
        from modules import devices

        return devices.device

    def hashing(self) -> bool:
        from modules import shared

        return not getattr(shared.cmd_opts, "no_hashing", False)

    def write_generation_param(self, p: Any, key: str, value: str | None) -> None:
        """Into ``p`` and into the model's parameters, which Forge merges into ``p`` right after ``setup_conds``
        (and a conditioning cache hit refills from the cache)."""
        for params in (getattr(getattr(p, "sd_model", None), "extra_generation_params", None),
                       getattr(p, "extra_generation_params", None)):
            if isinstance(params, dict):
                set_or_remove(params, key, value)
