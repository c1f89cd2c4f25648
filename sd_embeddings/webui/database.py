"""An ``EmbeddingDatabase``-compatible object served by our ``Library``.

Same surface as the WebUI's database (``word_embeddings``, ``skipped_embeddings``, ``ids_lookup``,
``expected_shape``, ``embedding_dirs``, ``register_embedding(_by_name)``, ``load_textual_inversion_embeddings``,
``find_embedding_at_position``, ``get_expected_shape``), so prompt processing, Lora's bundled embeddings, the Train
tab, the API and third-party extensions keep reading it. Differences, all deliberate:

* files come from the library: safe decoding of every format, sub-folders, collisions resolved with a reason;
* the per-generation check notices new, overwritten and deleted files in any sub-folder (``watcher``), for the
  cost of an ``Event.is_set()``, or on network folders a bounded number of ``stat`` calls (``polling``);
* a model switch (also to an already-loaded model) is noticed on the next call and re-evaluates compatibility;
* names registered from outside (Lora bundles) survive a rescan; ``version`` counts every change of state, and
  ``clock`` says which ``ids_lookup`` buckets each one touched (``cond_cache``: the conditioning cache key);
* ``embedding:name`` (ComfyUI's syntax) always matches (``explicit_lookup``); with ``bare_keywords`` off the
  library's names are listed in ``word_embeddings`` but left out of ``ids_lookup``, so only that form fires.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..formats.logs import get_logger
from ..library import Library
from ..library import watcher as watching
from ..library.bulk import gc_paused
from ..library.polling import BudgetedPoll
from ..records import Family
from . import cond_cache, console, model_family, table_update
from .embedding import EmbeddingDir, embedding_objects
from .explicit_lookup import ExplicitLookup
from .host import Host
from .keyword_index import TokenIndex, build_lookup, changed_buckets, claims_its_name, model_key, replace_contents
from .lookup import Lookup, match_at
from .tokens import TokenTable

logger = get_logger(__name__)

SHAPE_FAMILIES = model_family.SHAPE_FAMILIES


class LibraryDatabase:
    """Drop-in for ``modules.sd_hijack.model_hijack.embedding_db``."""

    def __init__(self, library: Library, watcher: watching.ChangeWatcher | None = None,
                 host: Host | None = None, tokens: TokenTable | None = None) -> None:
        if host is None:
            from .a1111 import A1111Host

            host = A1111Host()
        self.host: Host = host
        self.library = library
        self.watcher = watcher
        self.ids_lookup: Lookup = {}
        self.word_embeddings: dict[str, Any] = {}
        self.skipped_embeddings: dict[str, Any] = {}
        self.expected_shape = -1
        self.embedding_dirs: dict[str, EmbeddingDir] = {}
        self.previously_displayed_embeddings: tuple = ()
        self.version = 0
        self.clock = cond_cache.BucketClock()
        self._indexed_for: tuple[int, int] | None = None
        self.model_family: Family | None = None
        self.webui_dirs: list[str] = []
        self._lock = threading.RLock()
        self._model_key: tuple[int, int] | None = None
        self._predicted = False
        self._built: tuple[int, tuple[int, int] | None] | None = None
        self._external: dict[str, Any] = {}
        self.index = TokenIndex(host, tokens)
        self.poll = BudgetedPoll()
        self._objects: dict[str, Any] = {}
        self._loaded: dict[str, Any] = {}
        self._listed: dict[str, Any] = {}
        self.after_rebuild: list[Callable[[LibraryDatabase], None]] = []
        self.bare_keywords = True
        """False: a keyword typed alone stays a word; only ``embedding:name`` fires (the setting)."""
        self.explicit = ExplicitLookup()

    @property
    def scanned(self) -> bool:
        """Has the library been scanned and the tables built at least once?"""
        return self._built is not None

    def ensure_scanned(self) -> LibraryDatabase:
        """List from disk without waiting for a model; a scan under way (the first, at launch) is waited for."""
        if not self.scanned:
            self.load_textual_inversion_embeddings()
        return self

    # -- folders ----------------------------------------------------------------------------------------

    def add_embedding_dir(self, path: str) -> None:
        self.embedding_dirs[path] = EmbeddingDir(path)
        self.library.add_folder(path)

    def clear_embedding_dirs(self) -> None:
        self.embedding_dirs.clear()
        self.library.folders.clear()

    # -- registration (WebUI semantics: tokenized name, bucket by first id, longest first) ------------------

    def register_embedding(self, embedding: Any, model: Any) -> Any:
        return self.register_embedding_by_name(embedding, model, embedding.name)

    def register_embedding_by_name(self, embedding: Any, model: Any, name: str) -> Any:
        """Register (or with ``embedding=None`` unregister) a name; callers outside us are remembered."""
        with self._lock:
            if embedding is None:
                self._external.pop(name, None)
            else:
                self._external[name] = embedding
            if model is None:  # no tokenizer yet: listed now, matched from the rebuild the model load brings
                if embedding is None:
                    self.word_embeddings.pop(name, None)
                else:
                    self.word_embeddings[name] = embedding
                result = embedding
            else:
                result = self._register(embedding, model, name)
            self.changed(None if model is None else self._tokenize(model, name)[:1])
            return result

    def _register(self, embedding: Any, model: Any, name: str) -> Any:
        ids = self._tokenize(model, name)
        first = ids[0]
        bucket = [item for item in self.ids_lookup.get(first, []) if item[1].name != name] \
            if name in self.word_embeddings else list(self.ids_lookup.get(first, []))
        if embedding is not None:
            bucket.append((ids, embedding))
        # Longest first (the WebUI's order); among equal ids a file's own name before a name stored inside another
        # file ("bad -hands-5" in a picture reads as bad-hands-5.pt's keyword), then the order of registration.
        bucket.sort(key=lambda item: (-len(item[0]), claims_its_name(item[1])))
        self.ids_lookup[first] = bucket
        if embedding is None:
            self.word_embeddings.pop(name, None)
            if not bucket:
                del self.ids_lookup[first]
            return None
        self.word_embeddings[name] = embedding
        return embedding

    def _tokenize(self, model: Any, name: str) -> list[int]:
        return self.index.ids(model, name)

    def keyword_ids(self, name: str) -> list[int]:
        """A keyword's ids from the active model's tokenizer (cached; ``[]`` before a model is loaded)."""
        model = self.host.current_model()
        return self._tokenize(model, name) if model is not None else []

    def find_embedding_at_position(self, tokens: list[int], offset: int) -> tuple[Any, int | None]:
        """The longest name at ``offset``: a bare keyword from ``ids_lookup`` or an ``embedding:name``."""
        if not self.index.ready.is_set():  # names still being tokenized after a first start: match against all
            self.index.ready.wait()
        cond_cache.note(self.clock, tokens[offset])
        return match_at(self.ids_lookup, tokens, offset, self.explicit)

    def set_bare_keywords(self, value: bool) -> None:
        """The setting changed: rebuild the tables now (and a new ``version`` invalidates cached conditioning)."""
        with self._lock:
            if value == self.bare_keywords:
                return
            self.bare_keywords = value
            if self._built is not None:
                self._rebuild(self.host.current_model())

    # -- model ----------------------------------------------------------------------------------------------

    def get_expected_shape(self) -> int:
        model = self.host.current_model()
        return self.host.expected_shape(model) if model is not None else -1

    def _sync_model(self, model: Any) -> bool:
        """Notice a new model (also a switch to a loaded one; before any, the checkpoint header's family)."""
        key = model_key(model)
        if key == self._model_key and (model is not None or self._predicted):
            return False
        self._model_key = key
        if model is not None:
            self.expected_shape = self.get_expected_shape()
            self.model_family = SHAPE_FAMILIES.get(self.expected_shape)
        else:
            self._predicted = True
            self.model_family = model_family.selected_family(self.host)
            self.expected_shape = model_family.shape_of(self.model_family)
        self.library.set_family(self.model_family)
        return True

    # -- loading ----------------------------------------------------------------------------------------------

    def load_textual_inversion_embeddings(self, force_reload: bool = False, sync_with_sd_model: bool = True) -> None:
        """Apply file and model changes. Cheap when nothing changed: ``force_reload`` (the WebUI's refresh, every
        model load) rescans the folders (only changed files are read) unless a complete watcher saw nothing, and
        the tables are rebuilt only when the files or the model changed.

        ``sync_with_sd_model=False`` (the WebUI's API and Forge's tab ask so) keeps the model the tables were built
        for: names stay matched with its tokenizer; only a switch to another model waits for the next synced call.
        Before any model, such a call still takes the selected checkpoint's family: on Forge, whose first generation
        loads the model, the API and the tab make the first listing that way.
        """
        with self._lock, gc_paused():
            model = self.host.current_model()
            first_listing = model is None and self._model_key is None and not self._predicted
            model_changed = self._sync_model(model) if sync_with_sd_model or first_listing else False
            if model_key(model) != self._model_key:
                model = None  # not the model the tables are for: list the files, match names on the next sync
            if self.files_may_have_changed(force_reload):
                watcher = self.watcher
                self.library.refresh(changed=watcher.take_changed() if watcher and watcher.complete else None)
                if self.watcher is not None:
                    self.watcher.watch(self.library)
            for embdir in self.embedding_dirs.values():
                embdir.update()
            if model_changed or self._built != (self.library.version, self._model_key):
                self._rebuild(model)
        console.print_at_load(self)

    def rescan_after_replace(self, path: str) -> Any:
        """A file was replaced after its scan (``Embedding.vec``): rescan, re-register, return its new entry."""
        self.load_textual_inversion_embeddings(force_reload=True)
        return self.library.find(path)

    def files_may_have_changed(self, rescan: bool = False) -> bool:
        """Did anything change on disk since the last scan? Never scans: a complete watcher answers alone, else a
        budgeted poll (``polling``); ``rescan`` (a refresh asked for) is True unless the watcher is complete."""
        if self._built is None:
            return True
        if self.watcher is not None and self.watcher.consume():
            return True
        if self.watcher is not None and self.watcher.complete:
            return False
        return rescan or self.poll.check(self.library)

    def _rebuild(self, model: Any) -> None:
        """New tables from the library (unchanged files keep their objects), indexed by ``keyword_index``."""
        with gc_paused():  # the collector's passes over the WebUI's heap cost more than building 10,000 objects
            table_update.update(self, model) or self._tables(model)  # a few changed files: no rebuild
        for listener in list(self.after_rebuild):
            try:
                listener(self)
            except Exception:
                logger.exception("Embedding database listener failed")

    def _tables(self, model: Any) -> None:
        loaded, skipped, self._objects = embedding_objects(self)
        self._loaded, listed = loaded, dict(loaded)
        for name, embedding in self._external.items():
            listed.setdefault(name, embedding)
        self._listed = listed
        complete = True
        if model is not None:
            self.index.prepare(model, listed, lambda job: self._index_after_tokenizing(model, job))
            complete = self.index.ready.is_set()
        replace_contents(self.skipped_embeddings, skipped)
        self._index(model, complete)
        self._built = (self.library.version, self._model_key if model is not None else None)

    def _index(self, model: Any, complete: bool = True) -> None:
        """The tables from ``_listed`` with the ids known now (``complete``: all; else ``embedding:name`` waits for
        the tokenizing thread). Bare keywords off: only names registered from outside go into ``ids_lookup``."""
        if model is None:  # no tokenizer before the model loads: listed, matched once the model is there
            names, lookup, no_tokens = dict(self._listed), {}, []
        else:
            bare = [(name, embedding) for name, embedding in self._listed.items()
                    if self.bare_keywords or self._external.get(name) is embedding]
            names, lookup, no_tokens = build_lookup(bare, self.index.get)
            for name, embedding in self._listed.items():
                names.setdefault(name, embedding)
        if model is not None and complete:
            self.explicit.build(self._listed.values(), lambda text: self._tokenize(model, text), self.library.entries)
        else:
            self.explicit.clear()
        for name in no_tokens:
            names.pop(name, None)
            logger.warning("Embedding %s: its name %r gives no tokens; it cannot be used in a prompt",
                           getattr(self._listed[name], "filename", name), name)
        replace_contents(self.word_embeddings, dict(sorted(names.items(), key=lambda item: item[0].lower())))
        indexed_for = self._model_key if model is not None else None
        touched = changed_buckets(self.ids_lookup, lookup) if indexed_for == self._indexed_for is not None else None
        replace_contents(self.ids_lookup, lookup)
        self._indexed_for = indexed_for
        self.changed(touched)
        self.index.save_later()

    def cache_state(self) -> cond_cache.TablesState:
        """The tables' part of the WebUI's conditioning cache key (``cond_cache``)."""
        return cond_cache.TablesState(self.clock, self.version)

    def changed(self, first_ids: Iterable[int] | None) -> None:
        """A new ``version``, whose tables differ in the buckets of these first ids (None: anywhere)."""
        self.version += 1
        self.clock.touch(self.version, first_ids, self.explicit.first_id)

    def _index_after_tokenizing(self, model: Any, job: int) -> None:
        with self._lock, gc_paused():
            if self.index.current(job):
                self._index(model, complete=True)

