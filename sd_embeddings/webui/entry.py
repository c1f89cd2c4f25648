"""``register()``: everything the extension does inside the WebUI, wired once and undone on unload.

Called by ``scripts/sd_embeddings_ti.py`` each time the WebUI (re)loads scripts. It

1. picks the adapter (``host.choose`` over ``HOSTS``: each probes the classes it needs) and logs one line naming it,
   or one line saying what was looked for, and then does nothing else;
2. swaps the WebUI's embedding database for a ``LibraryDatabase`` (one per process, reused on Reload UI; the
   folders of the WebUI's database, plus the extension's own ``embeddings/`` only when the setting says so);
3. wraps, through ``modules.patches``, the functions the host names: ``tokenize_line`` (comma-backtrack fix, and
   the per-generation record of what was encoded), ``cached_params`` (embedding state in the cache key) and every
   ``setup_conds`` (de-duplicated ``TI hashes`` before the WebUI merges them and writes ``params.txt``);
4. registers callbacks: settings, the tab, API routes, paste, model loaded, and ``on_script_unloaded``, which
   undoes 2 and 3 (Reload UI with the extension disabled gives the WebUI's own behaviour; never patches twice).

Nothing runs at import time; the first scan happens when the WebUI first asks (model load, tab, API).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..formats.logs import get_logger
from ..library import Library
from ..library.hashing import HashCache
from ..library.watcher import ChangeWatcher
from ..records import Prefix
from . import console, first_scan, generation, prompt_warnings, settings
from . import host as hosts
from .a1111 import A1111Host
from .database import LibraryDatabase
from .forge2 import Forge2Host
from .tokens import TokenTable
from .usage import Recorder, usage_of

logger = get_logger(__name__)

PATCH_KEY = f"{Prefix.PACKAGE}.webui"
EXTENSION_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOSTS: tuple[type, ...] = (A1111Host, Forge2Host)
"""Adapters, most specific first; each probes the classes it would hook."""
OWN_FILE_EXTENSIONS = (".pt", ".bin", ".safetensors")


class _State:
    db: LibraryDatabase | None = None
    original_db: Any = None
    host: hosts.Host | None = None
    recorder = Recorder()
    summary = console.SummaryPrinter()
    creating = threading.Lock()


state = _State()


def host() -> hosts.Host:
    """The adapter ``register`` chose (A1111's until then)."""
    if state.host is None:
        state.host = A1111Host()
    return state.host


# -- the database ------------------------------------------------------------------------------------------

def own_folder() -> str:
    return os.path.join(EXTENSION_DIR, "embeddings")


def folders(webui_dirs: list[str]) -> list[str]:
    """Scan order: WebUI folders and (opted in) ours as the collision setting says, then extra folders.

    The extension's own folder is off by default inside the WebUI: other extensions read the database and expect
    every entry under ``--embeddings-dir`` (tag autocomplete builds relative paths from it), as the stock one is.
    """
    own = [own_folder()] if settings.option(settings.OWN_FOLDER) else []
    first = settings.option(settings.key("collision_order")) == settings.FOLDER_ORDER[0]
    out: list[str] = []
    for path in [*([*webui_dirs, *own] if first else [*own, *webui_dirs]), *settings.extra_folders()]:
        path = os.path.abspath(os.path.expanduser(path))
        if path not in out:
            out.append(path)
    return out


def unused_own_files() -> int:
    """Embedding files in the extension's own folder that the WebUI does not see (the setting is off)."""
    if settings.option(settings.OWN_FOLDER):
        return 0
    return sum(name.lower().endswith(OWN_FILE_EXTENSIONS)
               for _root, _dirs, names in os.walk(own_folder()) for name in names)


def database() -> LibraryDatabase:
    """The process-wide database (created once on first use, kept across Reload UI)."""
    with state.creating:  # the first-scan thread and the model-load thread may ask at the same moment
        if state.db is None:
            webui = host()
            cache = HashCache(os.path.join(webui.data_dir(), "cache", Prefix.SLUG, "hashes.json"))
            library = Library([], hash_cache=cache, background_hashing=webui.hashing())
            watcher = ChangeWatcher() if settings.option(settings.key("watch")) else None
            db = LibraryDatabase(library, watcher, webui, TokenTable(cache.path.with_name("tokens.json")))
            db.bare_keywords = settings.bare_keywords()
            db.webui_dirs = webui.webui_embedding_dirs()
            for path in folders(db.webui_dirs):
                db.add_embedding_dir(path)
            db.after_rebuild.append(lambda d: state.summary(d.library, d.model_family is not None))
            state.db = db
            unused = unused_own_files()
            if unused:
                console.say(f"Textual inversion: {unused} file(s) in {own_folder()} are not used inside the WebUI; "
                            "move them to the WebUI's embeddings folder, or switch on the setting \"" +
                            settings.OPTIONS[settings.OWN_FOLDER][1] + "\".")
    return state.db


def apply_folder_settings() -> None:
    db = database()
    wanted = folders(db.webui_dirs)
    if wanted != db.library.folders:
        db.clear_embedding_dirs()
        for path in wanted:
            db.add_embedding_dir(path)
        db.load_textual_inversion_embeddings(force_reload=True)


def apply_bare_keywords_setting() -> None:
    database().set_bare_keywords(settings.bare_keywords())


def apply_watch_setting() -> None:
    db = database()
    watch = settings.option(settings.key("watch"))
    if watch and db.watcher is None:
        db.watcher = ChangeWatcher()
        db.watcher.watch(db.library)
    elif not watch and db.watcher is not None:
        db.watcher.stop()
        db.watcher = None


def ensure_scanned() -> LibraryDatabase:
    """For the tab and the API before the model is there: list from disk without waiting for a model."""
    return database().ensure_scanned()


# -- patches -------------------------------------------------------------------------------------------------

def _hooks() -> hosts.Hooks:
    webui, recorder = host(), state.recorder

    def comma_fix(original: Any) -> Any:
        return generation.tokenize_line_with_fix(
            original, lambda: bool(settings.option(settings.key("fix_comma_backtrack"))), webui.make_fix,
            recorder.line)

    def cache_fix(original: Any) -> Any:
        return generation.cached_params_with_embeddings(original, _cache_version, recorder.conditioning)

    def hashes_fix(original: Any) -> Any:
        return generation.setup_conds_then(original, after_setup_conds)

    return hosts.Hooks(tokenize_line=comma_fix, cached_params=cache_fix, setup_conds=hashes_fix)


def _cache_version() -> Any:
    db = state.db
    return db.cache_state() if db is not None and settings.option(settings.key("fix_cond_cache")) else None


def install() -> None:
    """Swap the database in and apply the patches; safe to call twice."""
    from modules import patches

    db = database()
    previous = host().install_database(db)
    if previous is not db:
        state.original_db = previous
    for owner, field, wrap in host().patch_targets(_hooks()):
        if patches.original(PATCH_KEY, owner, field) is None:
            patches.patch(PATCH_KEY, owner, field, wrap(getattr(owner, field)))


def uninstall() -> None:
    """Restore the WebUI's database and functions (``on_script_unloaded``)."""
    from modules import patches

    host().uninstall_database(state.db, state.original_db)
    state.original_db = None
    for owner, field, _wrap in host().patch_targets(_hooks()):
        if patches.original(PATCH_KEY, owner, field) is not None:
            patches.undo(PATCH_KEY, owner, field)


# -- around each generation ---------------------------------------------------------------------------------

def before_generation(p: Any) -> None:
    """``Script.process``: A1111 reloads only when its own folder exists, Forge never; we reload where it does not."""
    state.recorder.end()  # a generation that died mid-way must not claim this thread's next lines
    db = database()
    webui_reloads = getattr(host(), "webui_reloads_embeddings", True) and os.path.exists(host().embeddings_dir())
    if not getattr(p, "do_not_reload_embeddings", False) and not webui_reloads:
        db.load_textual_inversion_embeddings()


def before_batch(p: Any) -> None:
    """``Script.process_batch``, right before each batch's ``setup_conds``: a fresh record for this batch (a
    refiner's second ``setup_conds`` in the same batch adds to it)."""
    state.recorder.begin(p)


def after_setup_conds(p: Any) -> None:
    """After ``p.setup_conds()``: the values the WebUI merges into ``p.extra_generation_params`` (and so into
    ``params.txt``) are the de-duplicated ones, or none. Never raises: the WebUI's own value stays on a failure."""
    try:
        hashes = settings.webui_option("textual_inversion_add_hashes_to_infotext", True)
        params = generation.infotext_params(usage_of(p).embeddings(), hashes, getattr(host(), "names_param", None))
        for key, value in params.items():
            host().write_generation_param(p, key, value)
    except Exception:  # an infotext detail must never stop a generation
        logger.exception("Textual inversion: could not compute TI hashes")


def after_batch(p: Any) -> None:
    """``Script.postprocess_batch``: one ``TI hashes`` entry per embedding (also after a conditioning cache hit,
    and with the hires prompts), and one comment per prompt problem (incompatible, failed, near-miss, too-long),
    all from what the WebUI encoded for this batch."""
    after_setup_conds(p)
    if settings.option(settings.key("diagnostics")):
        db = database()
        lines = prompt_warnings.generation_warnings(db.library, db.model_family, usage_of(p).lines.values(),
                                                    db.keyword_ids, db.bare_keywords, db.host.current_model())
        for line in lines:
            p.comment(line)
    state.recorder.end()


def register() -> None:
    console.setup_logging()
    chosen, line = hosts.choose(make() for make in HOSTS)
    if chosen is None:
        logger.warning("%s", line)
        return
    console.say(line)
    state.host = chosen
    install()
    try:
        _register_callbacks(chosen.name)
    except Exception:  # never leave the WebUI half-patched: back to its own database and functions
        uninstall()
        state.host = None
        raise


def _register_callbacks(adapter: str) -> None:
    from modules import script_callbacks as on

    applied = {settings.key("extra_folders"): apply_folder_settings, settings.OWN_FOLDER: apply_folder_settings,
               settings.key("collision_order"): apply_folder_settings, settings.key("watch"): apply_watch_setting,
               settings.key("bare_keywords"): apply_bare_keywords_setting,
               settings.key("embedding_db_shim"): install}
    for register_callback, callback, label in (
            (on.on_ui_settings, lambda: settings.add_settings(applied, adapter), "settings"),
            (on.on_before_ui, _before_ui, "page"), (on.on_app_started, _app_started, "api"),
            (on.on_infotext_pasted, _pasted, "paste"),
            (on.on_model_loaded, lambda _model: database().load_textual_inversion_embeddings(), "model"),
            (on.on_script_unloaded, uninstall, "unload")):
        hosts.on(register_callback, callback, settings.key(label))


def _before_ui() -> None:
    from . import page

    page.replace_builtin_page(database)
    first_scan.begin(database())


def _app_started(_demo: Any, app: Any) -> None:
    """Mount our routes, each behind the WebUI's own auth of its kind (API: ``api_dependencies``; tab: login)."""
    from . import api

    api_auth, page_auth = api.api_dependencies(app), api.page_dependencies(app)
    api.replace_core_route(app, database)  # right from the start: a first scan under way lists what it has read
    api.add_own_routes(app, database, api_auth or page_auth)  # every file, listed before a model loads
    try:
        from ..tab import routes as http_routes
        from .vocabulary import WebUIVocabulary

        app.include_router(http_routes.make_router(lambda: ensure_scanned().library,
                                                   auto_negative=settings.auto_negative, dependencies=page_auth,
                                                   vocabulary=WebUIVocabulary(host())))
    except ImportError as e:  # the tab's routes need fastapi, which the WebUI always has
        logger.warning("Textual inversion tab routes unavailable: %s", e)


def _pasted(_infotext: str, params: dict) -> None:
    from . import paste

    paste.on_infotext_pasted(ensure_scanned().library, params)
