"""``register()``: everything the extension does inside the WebUI, wired once and undone on unload.

Called by ``scripts/sd_embeddings_ti.py`` each time the WebUI (re)loads scripts. It

1. swaps ``modules.sd_hijack.model_hijack.embedding_db`` for a ``LibraryDatabase`` (one per process, reused on
   Reload UI; the folders of the WebUI's database are copied, plus the extension's ``embeddings/``);
2. patches ``TextConditionalModel.tokenize_line`` (comma-backtrack fix),
   ``StableDiffusionProcessing.cached_params`` (embedding state in the cache key) and every ``setup_conds`` of
   the processing classes (de-duplicated ``TI hashes`` before the WebUI merges them and writes ``params.txt``)
   through ``modules.patches``;
3. registers callbacks: settings, the tab (``on_before_ui``), API routes, paste, model loaded, and
   ``on_script_unloaded``, which restores the WebUI's database and undoes the patches (so Reload UI with the
   extension disabled gives the WebUI's own behaviour, and enabled again never patches twice).

Nothing runs at import time; the first scan happens when the WebUI first asks (model load, tab, API).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..library import Library
from ..library.hashing import HashCache
from ..library.watcher import ChangeWatcher
from . import console, generation, prompt_warnings, settings
from .database import LibraryDatabase

logger = logging.getLogger(__name__)

PATCH_KEY = "sd_embeddings.webui"
EXTENSION_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _State:
    db: LibraryDatabase | None = None
    original_db: Any = None
    summary = console.SummaryPrinter()


state = _State()


# -- the database ------------------------------------------------------------------------------------------

def folders(webui_dirs: list[str]) -> list[str]:
    """Scan order: WebUI folders and ours as the collision setting says, then extra folders from settings."""
    own = os.path.join(EXTENSION_DIR, "embeddings")
    base = [*webui_dirs, own] if settings.option("sd_embeddings_collision_order") == settings.FOLDER_ORDER[0] \
        else [own, *webui_dirs]
    out: list[str] = []
    for path in [*base, *settings.extra_folders()]:
        path = os.path.abspath(os.path.expanduser(path))
        if path not in out:
            out.append(path)
    return out


def database() -> LibraryDatabase:
    """The process-wide database (created on first use, kept across Reload UI)."""
    if state.db is None:
        from modules import paths, sd_hijack, shared

        webui_dirs = list(getattr(sd_hijack.model_hijack.embedding_db, "embedding_dirs", {}) or
                          [shared.cmd_opts.embeddings_dir])
        cache = HashCache(os.path.join(paths.data_path, "cache", "sd-embeddings", "hashes.json"))
        library = Library([], hash_cache=cache,
                          background_hashing=not getattr(shared.cmd_opts, "no_hashing", False))
        watcher = ChangeWatcher() if settings.option("sd_embeddings_watch") else None
        db = LibraryDatabase(library, watcher)
        db.webui_dirs = webui_dirs
        for path in folders(webui_dirs):
            db.add_embedding_dir(path)
        db.after_rebuild.append(lambda d: state.summary(d.library, d.model_family is not None))
        state.db = db
    return state.db


def apply_folder_settings() -> None:
    db = database()
    wanted = folders(db.webui_dirs)
    if wanted != db.library.folders:
        db.clear_embedding_dirs()
        for path in wanted:
            db.add_embedding_dir(path)
        db.load_textual_inversion_embeddings(force_reload=True)


def apply_watch_setting() -> None:
    db = database()
    if settings.option("sd_embeddings_watch") and db.watcher is None:
        db.watcher = ChangeWatcher()
        db.watcher.watch(db.library)
    elif not settings.option("sd_embeddings_watch") and db.watcher is not None:
        db.watcher.stop()
        db.watcher = None


def ensure_scanned() -> LibraryDatabase:
    """For the tab and the API before the model is there: list from disk without waiting for a model."""
    db = database()
    if not db.scanned:
        db.load_textual_inversion_embeddings()
    return db


# -- patches -------------------------------------------------------------------------------------------------

def _patch_targets() -> list[tuple[Any, str, Any]]:
    from modules import processing, sd_hijack_clip

    def comma_fix(original: Any) -> Any:
        return generation.tokenize_line_with_fix(
            original, lambda: bool(settings.option("sd_embeddings_fix_comma_backtrack")))

    def cache_fix(original: Any) -> Any:
        return generation.cached_params_with_embeddings(original, _cache_version)

    def hashes_fix(original: Any) -> Any:
        return generation.setup_conds_then(original, after_setup_conds)

    # the base class and each subclass that overrides it (txt2img adds the hires conditioning after ``super()``)
    setup_owners = [owner for owner in vars(processing).values() if isinstance(owner, type) and
                    issubclass(owner, processing.StableDiffusionProcessing) and "setup_conds" in vars(owner)]
    return [(sd_hijack_clip.TextConditionalModel, "tokenize_line", comma_fix),
            (processing.StableDiffusionProcessing, "cached_params", cache_fix),
            *[(owner, "setup_conds", hashes_fix) for owner in setup_owners]]


def _cache_version() -> Any:
    db = state.db
    if db is None or not settings.option("sd_embeddings_fix_cond_cache"):
        return None
    return db.version


def install() -> None:
    """Swap the database in and apply the patches; safe to call twice."""
    from modules import patches, sd_hijack

    db = database()
    current = sd_hijack.model_hijack.embedding_db
    if current is not db:
        state.original_db = current
        sd_hijack.model_hijack.embedding_db = db
    for owner, field, wrap in _patch_targets():
        if patches.original(PATCH_KEY, owner, field) is None:
            patches.patch(PATCH_KEY, owner, field, wrap(getattr(owner, field)))


def uninstall() -> None:
    """Restore the WebUI's database and functions (``on_script_unloaded``)."""
    from modules import patches, sd_hijack

    if state.original_db is not None and sd_hijack.model_hijack.embedding_db is state.db:
        sd_hijack.model_hijack.embedding_db = state.original_db
    state.original_db = None
    for owner, field, _wrap in _patch_targets():
        if patches.original(PATCH_KEY, owner, field) is not None:
            patches.undo(PATCH_KEY, owner, field)


# -- callbacks ------------------------------------------------------------------------------------------------

def before_generation(p: Any) -> None:
    """``Script.process``: the WebUI reloads only when its own folder exists; we also comment on prompt problems
    (the core's diagnostics: incompatible, failed, near-miss, too-long), one line each in the generation info."""
    from modules import shared

    db = database()
    if not getattr(p, "do_not_reload_embeddings", False) and not os.path.exists(shared.cmd_opts.embeddings_dir):
        db.load_textual_inversion_embeddings()
    if settings.option("sd_embeddings_diagnostics"):
        texts = [text for field in ("all_prompts", "all_negative_prompts", "all_hr_prompts", "all_hr_negative_prompts")
                 for text in getattr(p, field, None) or []]
        for line in prompt_warnings.generation_warnings(db.library, db.model_family, texts):
            p.comment(line)


def generation_ti_hashes(p: Any) -> str:
    """The de-duplicated ``TI hashes`` of the current batch; "" when none or the WebUI's setting is off."""
    from modules import shared

    if not getattr(shared.opts, "textual_inversion_add_hashes_to_infotext", True):
        return ""
    used = generation.used_embeddings(database(), shared.sd_model.cond_stage_model.tokenize,
                                      generation.generation_texts(p))
    return generation.ti_hashes(used.values())


def after_setup_conds(p: Any) -> None:
    """After ``p.setup_conds()``: the value the WebUI merges into ``p.extra_generation_params`` (and so into
    ``params.txt``) is the de-duplicated one. Never raises: the WebUI's own value stays on a failure."""
    from modules import sd_hijack

    try:
        value = generation_ti_hashes(p)
    except Exception:  # an infotext detail must never stop a generation
        logger.exception("Textual inversion: could not compute TI hashes")
        return
    if value:
        sd_hijack.model_hijack.extra_generation_params["TI hashes"] = value


def after_batch(p: Any) -> None:
    """``Script.postprocess_batch``: one ``TI hashes`` entry per embedding, also after a conditioning cache hit."""
    value = generation_ti_hashes(p)
    if value:
        p.extra_generation_params["TI hashes"] = value


def register() -> None:
    from modules import script_callbacks

    console.setup_logging()
    try:
        _patch_targets()  # everything install() patches must exist before anything is swapped
    except (ImportError, AttributeError) as e:
        logger.warning("Textual inversion (sd-embeddings): this WebUI lacks what the extension hooks into (%s); "
                       "the extension stays inactive and the WebUI's own handling is used. It supports "
                       "AUTOMATIC1111 1.7-1.10.", e)
        return
    install()
    script_callbacks.on_ui_settings(lambda: settings.add_settings({
        "sd_embeddings_extra_folders": apply_folder_settings,
        "sd_embeddings_collision_order": apply_folder_settings,
        "sd_embeddings_watch": apply_watch_setting,
    }), name="sd_embeddings_settings")
    script_callbacks.on_before_ui(_before_ui, name="sd_embeddings_page")
    script_callbacks.on_app_started(_app_started, name="sd_embeddings_api")
    script_callbacks.on_infotext_pasted(_pasted, name="sd_embeddings_paste")
    script_callbacks.on_model_loaded(lambda _model: database().load_textual_inversion_embeddings(),
                                     name="sd_embeddings_model")
    script_callbacks.on_script_unloaded(uninstall, name="sd_embeddings_unload")


def _before_ui() -> None:
    from . import page

    page.replace_builtin_page(ensure_scanned)


def _app_started(_demo: Any, app: Any) -> None:
    from . import api

    api.replace_core_route(app, database)
    api.add_own_routes(app, database)
    try:
        from ..tab import routes as http_routes

        app.include_router(http_routes.make_router(lambda: ensure_scanned().library,
                                                   auto_negative=settings.auto_negative))
    except ImportError as e:  # the tab's routes need fastapi, which the WebUI always has
        logger.warning("Textual inversion tab routes unavailable: %s", e)


def _pasted(_infotext: str, params: dict) -> None:
    from . import paste

    paste.on_infotext_pasted(ensure_scanned().library, params)
