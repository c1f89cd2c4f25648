"""The database's keyword index: token ids per name (the model's tokenizer, through a ``TokenTable`` kept across
starts) and the WebUI's ``ids_lookup`` (first id -> ``[(ids, embedding)]``, longest first) built in one pass.

Building it name by name, as the WebUI does, re-sorts a bucket per insertion: 10,000 names sharing a first token
("emb...") cost 15 s. Here each bucket is sorted once. Names the table does not know yet are tokenized in batches;
when there are more than ``SYNC_LIMIT`` of them (a first start on a big library), on a background thread, so a model
load never waits for it: ``ready`` is cleared until the ids are in, and the database's
``find_embedding_at_position`` waits for it (a prompt is never matched against an incomplete index).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..formats.logs import get_logger
from ..library.collisions import claims_name
from .host import Host
from .lookup import Lookup
from .tokens import TokenTable, fingerprint

logger = get_logger(__name__)

SYNC_LIMIT = 64
"""Missing names tokenized on the caller's thread (a dropped file, a rename); more go to the background."""



def model_key(model: Any) -> tuple[int, int] | None:
    """What identifies the active model and its text encoder (a switch to an already-loaded model changes it)."""
    return (id(model), id(getattr(model, "cond_stage_model", None))) if model is not None else None


def claims_its_name(embedding: Any) -> bool:
    """Is this object's name stored inside its file (a picture's) rather than the file's own name?"""
    entry = getattr(embedding, "entry", None)
    return entry is not None and claims_name(entry)


def build_lookup(pairs: Iterable[tuple[str, Any]], ids_of: Callable[[str], tuple[int, ...] | None]
                 ) -> tuple[dict[str, Any], Lookup, list[str]]:
    """``(names, lookup, no_tokens)`` for ``(name, embedding)`` pairs in registration order.

    ``names`` keeps every pair whose ids are known and not empty, plus those not tokenized yet (``ids_of`` gives
    None: listed now, matched once their ids are in); ``no_tokens`` names the ones whose ids are empty. In each
    bucket, longer names come first; among equal ids a file's own name before a name stored inside another file ("bad
    -hands-5" in a picture reads as bad-hands-5.pt's keyword), then registration order (the WebUI's per-insert sort)."""
    names: dict[str, Any] = {}
    lookup: Lookup = {}
    no_tokens: list[str] = []
    for name, embedding in pairs:
        ids = ids_of(name)
        if ids is not None and not ids:
            no_tokens.append(name)
            continue
        names[name] = embedding
        if ids is not None:
            lookup.setdefault(ids[0], []).append((list(ids), embedding))
    for bucket in lookup.values():
        bucket.sort(key=lambda item: (-len(item[0]), claims_its_name(item[1])))
    return names, lookup, no_tokens


def changed_buckets(before: Lookup, after: Lookup) -> set[int]:
    """First ids whose bucket differs (names, ids, order or objects) between two ``ids_lookup`` tables."""
    return {first for first in before.keys() | after.keys() if before.get(first) != after.get(first)}


def replace_contents(table: dict, new: dict) -> None:
    """Same dict object (other extensions may hold the database's tables), new contents in two C-speed steps."""
    table.clear()
    table.update(new)


class TokenIndex:
    """Token ids of names for the active model; see the module docstring."""

    def __init__(self, host: Host, table: TokenTable | None = None) -> None:
        self.host = host
        self.table = table if table is not None else TokenTable(None)
        self.ready = threading.Event()
        self.ready.set()
        self._keys: dict[tuple[int, int] | None, str] = {}
        self._job = 0

    def _bind(self, model: Any) -> str:
        """Fingerprint the model's tokenizer once per model object and use its table."""
        bound = model_key(model)
        key = self._keys.get(bound)
        if key is None:
            key = fingerprint(lambda texts: self.host.tokenize(model, texts))
            self._keys = {bound: key}
        self.table.bind(key)
        return key

    def get(self, name: str) -> tuple[int, ...] | None:
        return self.table.get(name)

    def ids(self, model: Any, name: str) -> list[int]:
        """A name's ids now (tokenized on this thread if the table lacks it)."""
        key = self._bind(model)
        found = self.table.get(name)
        if found is None:
            self.table.fill([name], lambda texts: self.host.tokenize(model, texts), key)
            found = self.table.get(name)
        return list(found) if found is not None else list(self.host.tokenize(model, [name])[0])

    def prepare(self, model: Any, names: Iterable[str], done: Callable[[int], None]) -> int:
        """Make the ids of ``names`` known; returns a job number. Few missing: tokenized now, ``ready`` stays set.
        Many: ``ready`` is cleared and a thread tokenizes them, then calls ``done(job)`` and sets ``ready`` (the
        caller re-indexes in ``done``; a later ``prepare`` supersedes the job: ``done`` checks the number)."""
        key = self._bind(model)
        missing = self.table.missing(names)
        self._job += 1
        job = self._job

        def tokenize(texts: list[str]) -> list[list[int]]:
            return self.host.tokenize(model, texts)

        if len(missing) <= SYNC_LIMIT:
            if missing:
                self.table.fill(missing, tokenize, key)
            self.ready.set()
            return job
        self.ready.clear()
        threading.Thread(target=self._fill, args=(missing, tokenize, key, job, done), daemon=True,
                         name="sd-embeddings-tokens").start()
        return job

    def current(self, job: int) -> bool:
        return job == self._job

    def _fill(self, names: list[str], tokenize: Callable[[list[str]], list[list[int]]], key: str, job: int,
              done: Callable[[int], None]) -> None:
        try:
            self.table.fill(names, tokenize, key)
        except Exception:  # names left without ids are listed but not matched; the next rebuild tries again
            logger.exception("Textual inversion: tokenizing %d embedding names failed", len(names))
        try:
            done(job)
        finally:
            if self.current(job):
                self.ready.set()
        self.table.save()

    def save_later(self) -> None:
        """Write the table on a thread of its own if anything was added (never on a generation's path)."""
        if self.table.dirty:
            threading.Thread(target=self.table.save, daemon=True, name="sd-embeddings-tokens-save").start()
