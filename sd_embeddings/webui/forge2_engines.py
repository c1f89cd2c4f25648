"""Forge2 (Forge main, Forge Neo): each text-processing engine's embedding database, as a view of the shared one.

Forge builds one ``EmbeddingDatabase(tokenizer, expected_shape)`` per CLIP engine when it builds the model (SD1/SD2:
one, SDXL: ``_l`` and ``_g``, both 2048 wide; SD3.5: 768 and 1280; Flux: ``_l``) and loads every file into each with
``torch.load``. The engine reads ``find_embedding_at_position`` while it chunks a prompt and writes the chunks'
``fixes`` into the database, where its token-embedding module (``CLIPEmbeddingForTextualInversion``) takes them.

``EngineDatabase`` has that surface, served by the one ``LibraryDatabase``: the embeddings are the shared objects
(SDXL vectors are ``{"clip_l", "clip_g"}`` and each engine's module picks its key), filtered by the engine's own width;
names (and ``embedding:name`` spellings) are tokenized with the engine's tokenizer as Forge's database does (no
special tokens), once per text; ``fixes`` are the engine's own. Nothing is read from disk here: files are the
library's (safe, scanned once).

``adopt``/``release`` point an engine built before the factory was installed (Reload UI) at a view, and back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..formats.logs import get_logger
from .cond_cache import note_untracked
from .database import LibraryDatabase
from .explicit_lookup import ExplicitLookup
from .lookup import Lookup, match_at

logger = get_logger(__name__)

ENGINE_PREFIX = "text_processing_engine"
PRIMARY_ORDER = ("text_processing_engine", "text_processing_engine_l", "text_processing_engine_g")
"""The engine whose width names the model's family (SD1 768, SD2 1024, SDXL 2048) and whose tokenizer the shared
database uses for keywords; Flux and SD3.5 have ``_l`` first."""
ORIGINAL = "sd_embeddings_original"
"""Attribute of a factory installed in place of a WebUI class: the class it replaced."""
MAX_NAMES = 50_000
Tables = tuple[int, dict[str, Any], dict[str, Any], Lookup, ExplicitLookup]
"""``(database version, word_embeddings, skipped_embeddings, ids_lookup, embedding:name lookup)`` of one view."""


class EngineDatabase:
    """What one Forge engine (and its token-embedding module) sees as its ``EmbeddingDatabase``."""

    def __init__(self, db: LibraryDatabase, tokenizer: Any, expected_shape: int = -1, original: Any = None) -> None:
        self.db = db
        self.tokenizer = tokenizer
        self.expected_shape = expected_shape
        self.original = original
        """The WebUI's database this view replaced in an engine (``release`` puts it back); None when built so."""
        self.fixes: Any = []
        self._ids: dict[str, list[int]] = {}
        self._tables: Tables | None = None

    # -- what the engine and other extensions read ---------------------------------------------------------------

    @property
    def word_embeddings(self) -> dict[str, Any]:
        return self._current()[1]

    @property
    def skipped_embeddings(self) -> dict[str, Any]:
        return self._current()[2]

    @property
    def ids_lookup(self) -> Lookup:
        return self._current()[3]

    @property
    def embedding_dirs(self) -> dict[str, Any]:
        return self.db.embedding_dirs

    def find_embedding_at_position(self, tokens: list[int], offset: int) -> tuple[Any, int | None]:
        tables = self._current()
        note_untracked()  # this view's ids come from its own tokenizer: the database's clock cannot vouch for them
        return match_at(tables[3], tokens, offset, tables[4])

    def name_ids(self, name: str) -> list[int]:
        """``name``'s token ids as Forge's own database makes them (cached)."""
        ids = self._ids.get(name)
        if ids is None:
            ids = list(self.tokenizer([name], truncation=False, add_special_tokens=False)["input_ids"][0])
            if len(self._ids) > MAX_NAMES:
                self._ids.clear()
            self._ids[name] = ids
        return ids

    # -- what the engine calls when it is built, and registration from outside ---------------------------------------

    def add_embedding_dir(self, path: str) -> None:
        """Ignored: the shared database scans ``--embeddings-dir`` and the extension's folders (its settings)."""

    def clear_embedding_dirs(self) -> None:
        """Ignored, as ``add_embedding_dir``."""

    def load_textual_inversion_embeddings(self, force_reload: bool = False, **_ignored: Any) -> None:
        """Forge calls it while it builds the engine (the old model already dropped, the new one not set yet), tag
        autocomplete on refresh: files are applied; the model switch is the ``model_loaded`` callback's."""
        self.db.load_textual_inversion_embeddings(force_reload=force_reload, sync_with_sd_model=False)

    def register_embedding(self, embedding: Any) -> Any:
        return self.register_embedding_by_name(embedding, embedding.name)

    def register_embedding_by_name(self, embedding: Any, name: str) -> Any:
        return self.db.register_embedding_by_name(embedding, self.db.host.current_model(), name)

    # -- tables ---------------------------------------------------------------------------------------------------

    def fits(self, embedding: Any) -> bool:
        """Its width is this engine's (an SD3.5 clip_g file fits the 1280-wide engine, not the 768 one); names
        registered from outside without a shape fit, as in Forge's own database."""
        shape = getattr(embedding, "shape", None)
        return self.expected_shape == -1 or shape in (None, -1, self.expected_shape)

    def _current(self) -> Tables:
        """The tables for the shared database's current version (rebuilt when it moved on): as the database's
        own, a library name is a bare keyword only while ``bare_keywords`` is on; ``embedding:name`` always."""
        tables = self._tables
        version = self.db.version
        if tables is not None and tables[0] == version:
            return tables
        every = {**self.db.skipped_embeddings, **self.db.word_embeddings}
        loaded = {name: e for name, e in every.items() if self.fits(e)}
        skipped = {name: e for name, e in every.items() if name not in loaded}
        bare = {name: e for name, e in loaded.items() if self.db.bare_keywords or getattr(e, "entry", None) is None}
        explicit = ExplicitLookup()
        explicit.build(loaded.values(), self.name_ids, self.db.library.entries)  # duplicates answer too
        tables = (version, loaded, skipped, self._lookup(bare), explicit)
        self._tables = tables
        return tables

    def _lookup(self, loaded: dict[str, Any]) -> Lookup:
        lookup: Lookup = {}
        for name, embedding in loaded.items():
            ids = self.name_ids(name)
            if ids:
                lookup.setdefault(ids[0], []).append((ids, embedding))
        for bucket in lookup.values():
            bucket.sort(key=lambda item: len(item[0]), reverse=True)
        return lookup


def view_factory(db_of: Callable[[], LibraryDatabase], stock: type) -> Callable[..., EngineDatabase]:
    """Stands for ``EmbeddingDatabase`` in an engine module: ``EmbeddingDatabase(tokenizer, expected_shape)``."""

    def EmbeddingDatabase(tokenizer: Any, expected_shape: int = -1) -> EngineDatabase:  # noqa: N802 (the name it replaces)
        return EngineDatabase(db_of(), tokenizer, expected_shape)

    setattr(EmbeddingDatabase, ORIGINAL, stock)
    return EmbeddingDatabase


def shared_factory(db_of: Callable[[], LibraryDatabase], stock: type) -> Callable[..., LibraryDatabase]:
    """Stands for ``modules.textual_inversion.textual_inversion.EmbeddingDatabase``, which Forge's tab module and API
    each instantiate (and load) for a list of their own: they get the shared database."""

    def EmbeddingDatabase(*_args: Any, **_kwargs: Any) -> LibraryDatabase:  # noqa: N802
        return db_of()

    setattr(EmbeddingDatabase, ORIGINAL, stock)
    return EmbeddingDatabase


def stock_of(value: Any) -> Any:
    """The WebUI's own class behind one of our factories (the value itself if it is not ours)."""
    return getattr(value, ORIGINAL, value)


def engines_of(model: Any) -> list[Any]:
    """The model's CLIP engines (``text_processing_engine*`` with ``embeddings`` and ``tokenize_line``), primary
    first; T5 and other engines without an embedding database are left out."""
    if model is None:
        return []
    found = [value for name, value in sorted(vars(model).items()) if name.startswith(ENGINE_PREFIX) and
             hasattr(value, "embeddings") and hasattr(value, "tokenize_line")]
    order = {id(getattr(model, name, None)): index for index, name in enumerate(PRIMARY_ORDER)}
    return sorted(found, key=lambda engine: order.get(id(engine), len(order)))


def token_embedding(engine: Any) -> Any:
    """The engine's token-embedding module (``CLIPEmbeddingForTextualInversion``), or None in another layout."""
    try:
        return engine.text_encoder.transformer.text_model.embeddings.token_embedding
    except AttributeError:
        return None


def _point(engine: Any, old: Any, new: Any) -> None:
    engine.embeddings = new
    module = token_embedding(engine)
    if module is not None and getattr(module, "embeddings", None) is old:
        module.embeddings = new


def adopt(engine: Any, db: LibraryDatabase) -> EngineDatabase:
    """Make ``engine`` (and its token-embedding module) use a view of ``db``; remembers the database it had."""
    current = engine.embeddings
    if isinstance(current, EngineDatabase) and current.db is db:
        return current
    original = current.original if isinstance(current, EngineDatabase) else current
    view = EngineDatabase(db, engine.tokenizer, getattr(current, "expected_shape", -1), original)
    _point(engine, current, view)
    return view


def release(engine: Any, stock: type | None, embeddings_dir: str) -> None:
    """Give ``engine`` back a WebUI database: the one it had, or (built through our factory) a new, empty one over
    ``embeddings_dir``. Not loaded here: that would unpickle every file with ``torch.load`` on a Reload UI."""
    view = engine.embeddings
    if not isinstance(view, EngineDatabase):
        return
    original = view.original
    if original is None and stock is not None:
        original = stock(view.tokenizer, view.expected_shape)
        original.add_embedding_dir(embeddings_dir)
    if original is not None:
        _point(engine, view, original)
