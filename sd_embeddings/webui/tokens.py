"""Keyword -> token ids from the model's own tokenizer, kept across starts.

The WebUI tokenizes every embedding name at every model load (its CLIP tokenizer takes 0.2-0.35 ms a name: 2-3.5 s
for 10,000 names). Token ids depend only on the text and the tokenizer, so they are kept in a file keyed by a
fingerprint of the tokenizer (the ids it gives for ``PROBES``, texts that exercise its normalisation: case,
whitespace, ftfy's fixes, punctuation, non-Latin scripts). A restart with the same tokenizer tokenizes nothing; a
model with another tokenizer starts a fresh table. The file is columnar JSON (two lists), written atomically; a
damaged or foreign file is ignored (its names are tokenized again).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable

from ..formats import json_limits
from ..formats.logs import get_logger
from ..library.atomic import write_atomic

logger = get_logger(__name__)

VERSION = 1
PROBES = ("a photo of a cat", "EasyNegative", "bad_prompt_version2", "bad-hands-5", "ng deepnegative v1 75t",
          "  spaced   out  ", "ＦＵＬＬ ｗｉｄｔｈ", "&amp; &lt;tag&gt;", "\u201cquoted\u201d", "ﬁne ligature",
          "caf\u00e9 cafe\u0301", "日本語の名前", "emoji \U0001f600", "x.y,z;w:(1.2)", "0123456789", "ǅungla")
"""Texts whose ids tell tokenizers apart; changing them invalidates every stored table (new fingerprint)."""
LIMITS = json_limits.JsonLimits(size=64 * 1024 * 1024, values=4_000_000, containers=1_100_000, strings=1_100_000)
"""About ten times a 100,000-name table; anything larger is not ours."""
BATCH = 512
"""Names per tokenizer call (one call per name costs more than one call for many)."""

Tokenize = Callable[[list[str]], list[list[int]]]


def fingerprint(tokenize: Tokenize) -> str:
    """A short digest of the ids ``tokenize`` gives for ``PROBES``."""
    ids = tokenize(list(PROBES))
    return hashlib.sha256(json.dumps([VERSION, ids]).encode()).hexdigest()[:32]


class TokenTable:
    """Token ids per name for the tokenizer last ``bind``-ed; ``path=None`` keeps the table in memory only."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.fingerprint = ""
        self.tokenized = 0
        """How many names this process has tokenized (tests count work with it)."""
        self._ids: dict[str, tuple[int, ...]] = {}
        self._dirty = False
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()

    def bind(self, key: str) -> None:
        """Use the table of tokenizer ``key`` (a ``fingerprint``): from the file when it holds that one."""
        with self._lock:
            if key == self.fingerprint:
                return
            self.fingerprint, self._ids, self._dirty = key, self._read(key), False

    @property
    def dirty(self) -> bool:
        return self._dirty

    def get(self, name: str) -> tuple[int, ...] | None:
        return self._ids.get(name)

    def missing(self, names: Iterable[str]) -> list[str]:
        known = self._ids
        return [name for name in dict.fromkeys(names) if name not in known]

    def fill(self, names: list[str], tokenize: Tokenize, key: str) -> None:
        """Tokenize ``names`` (in batches) and keep their ids, unless the table was re-bound meanwhile."""
        for start in range(0, len(names), BATCH):
            batch = names[start:start + BATCH]
            ids = tokenize(batch)
            with self._lock:
                if key != self.fingerprint:
                    return
                self._ids.update((name, shared_ids(row)) for name, row in zip(batch, ids))
                self.tokenized += len(batch)
                self._dirty = True

    def save(self) -> None:
        """Write the table if it changed; a failure only costs tokenizing again next start. One write at a time,
        so a save returns only once what was there when it was called is on disk."""
        with self._write_lock:
            with self._lock:
                if self.path is None or not self._dirty or not self.fingerprint:
                    return
                names = list(self._ids)
                document = {"version": VERSION, "fingerprint": self.fingerprint, "names": names,
                            "ids": [list(self._ids[name]) for name in names]}
                self._dirty = False
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                write_atomic(self.path, json.dumps(document, separators=(",", ":")).encode())
            except OSError as e:
                logger.warning("Could not write the token table %s: %s", self.path, e)

    def _read(self, key: str) -> dict[str, tuple[int, ...]]:
        if self.path is None or not os.path.isfile(self.path):
            return {}
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read(LIMITS.size + 1)
            json_limits.check(raw, LIMITS, self.path, "the token table")
            document = json.loads(raw)
            if document.get("version") != VERSION or document.get("fingerprint") != key:
                return {}
            return _checked(document["names"], document["ids"])
        except Exception as e:  # any damage: the table is only an optimisation
            logger.warning("Ignoring unreadable token table %s (%s)", self.path, type(e).__name__)
            return {}


def _checked(names: object, ids: object) -> dict[str, tuple[int, ...]]:
    """The stored table, or ValueError when any row is not a text with a list of small ints."""
    if not (isinstance(names, list) and isinstance(ids, list) and len(names) == len(ids)):
        raise ValueError("names and ids do not pair up")
    table: dict[str, tuple[int, ...]] = {}
    for name, row in zip(names, ids):
        if not (isinstance(name, str) and isinstance(row, list)
                and all(type(i) is int and 0 <= i < 2**31 for i in row)):
            raise ValueError("a damaged row")
        table[name] = shared_ids(row)
    return table


_IDS: dict[int, int] = {}


def shared_ids(row: Iterable[int]) -> tuple[int, ...]:
    """A name's ids as a tuple of shared int objects: ids above 256 are one object per occurrence as JSON or a
    tokenizer makes them (10,000 names, 50,000 ids, 1.6 MB); a vocabulary has at most ~50,000 distinct ones."""
    return tuple(_IDS.setdefault(i, i) if len(_IDS) < 1 << 17 else i for i in row)
