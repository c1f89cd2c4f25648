"""``embedding:name`` inside the WebUI: the database's second lookup, beside the WebUI-shaped ``ids_lookup``.

Every spelling of every usable embedding (``prompt.explicit.names_for``) starts with the same ``embedding``
token, so in ``ids_lookup`` they would all share one bucket that the WebUI's algorithm scans linearly; here they
sit in a ``KeywordIndex`` (one dict lookup per length) and ``ids_lookup`` keeps only bare keywords, exactly what
other readers of the database expect. Token ids come from the model's own tokenizer (as ``ids_lookup``'s do),
built from the name's parts where that gives the same ids (``keywords.SpellingIds``: the keyword's ids, cached
for the bare keyword already, are reused). A ``duplicate`` file's own spellings mean the keyword's winner
(``keywords.duplicate_aliases``), as on the standalone host.

Building the index costs a tokenizer lookup per spelling (34,000 for 10,000 files) on every change of the files,
and most prompts never use the syntax; with a tokenizer that cuts ``embedding`` off what follows it (CLIP: a
letter run ends at ``:``), every spelling's ids start with ``embedding``'s first id, so the index is built on the
first ``match`` at such a token, not at each rebuild. Other tokenizers get it built at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..prompt.explicit import PREFIX
from ..prompt.keywords import KeywordIndex, SpellingIds, duplicate_aliases
from ..records import Entry


class _ModelIds:
    """A ``Tokenizer``-shaped view (``encode``) of the model's tokenizer, through the database's cache."""

    def __init__(self, ids_of: Callable[[str], list[int]]) -> None:
        self.encode = ids_of


class ExplicitLookup:
    """Which embedding object an ``embedding:<name>`` at a token position means."""

    def __init__(self) -> None:
        self.table: tuple[KeywordIndex | None, dict[str, Any]] = (None, {})
        """The index and the embedding objects by path, replaced together (``match`` reads them on other threads)."""
        self.builds = 0
        """How many indexes were built (tests count work with it)."""
        self._pending: tuple | None = None
        self._trigger: int | None = None
        self._lock = threading.Lock()

    def build(self, embeddings: Iterable[Any], ids_of: Callable[[str], list[int]],
              entries: Iterable[Entry] = ()) -> None:
        """Index the library's ``embeddings`` (objects with an ``entry``); others (Lora bundles) have no file name.
        ``entries``: the library's entries, whose duplicates answer with their winner. Deferred to the first
        ``match`` at an ``embedding`` token where the tokenizer allows (module docstring)."""
        pending = (list(embeddings), ids_of, tuple(entries))
        model_ids = _ModelIds(ids_of)
        prefix = model_ids.encode(PREFIX)
        with self._lock:
            self.table, self._pending = (None, {}), pending
            self._trigger = prefix[0] if prefix and SpellingIds(model_ids).splits else None
        if self._trigger is None:
            self._build_pending(pending)

    @property
    def first_id(self) -> int | None:
        """The token every spelling starts with (a tokenizer that cuts ``embedding`` off what follows), else None."""
        return self._trigger

    def _build_pending(self, pending: tuple) -> None:
        embeddings, ids_of, entries = pending
        ours = [embedding for embedding in embeddings if getattr(embedding, "entry", None) is not None]
        usable = [embedding.entry for embedding in ours]
        index = KeywordIndex(usable, _ModelIds(ids_of), bare=False, aliases=duplicate_aliases(entries, usable))
        with self._lock:
            if self._pending is pending:  # not superseded by a rebuild meanwhile
                self.table = (index, {embedding.entry.path: embedding for embedding in ours})
                self._pending = None
                self.builds += 1

    def clear(self) -> None:
        with self._lock:
            self.table, self._pending = (None, {}), None

    def match(self, tokens: list[int], offset: int) -> tuple[Any, int] | None:
        pending = self._pending
        if pending is not None:
            if tokens[offset] != self._trigger:
                return None
            self._build_pending(pending)
        index, objects = self.table
        found = index.match(tokens, offset) if index is not None and index.buckets else None
        if found is None:
            return None
        return objects[found[0].path], found[1]
