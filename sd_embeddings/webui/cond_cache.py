"""Which of the WebUI's cached conditionings a change of the embedding tables can alter.

The WebUI keeps the last conditioning under a key of its own parameters; ``generation.cached_params_with_embeddings``
adds a ``TablesState`` to it. Keyed on the database version alone, any change (a file dropped into a sub-folder
that no prompt names) re-encoded the prompt: a few CLIP passes, seconds on a CPU. The WebUI's matcher
(``find_embedding_at_position``, at every token position of every prompt line) reads ``ids_lookup`` only through
the bucket of the token at that position, so an encoding depends on the buckets of the token ids it looked up and
on nothing else of the tables. Hence:

* the database's ``BucketClock`` records, for each first token id, the version of the last change to that bucket
  (a name added, removed, replaced, re-ordered; ``embedding:name`` spellings all start with one token, whose bucket
  every change touches), or that everything changed (a model switch, a rebuild that cannot be compared);
* while a line is tokenized, ``reading`` collects the ids the database's matcher looked up (``note``), and the
  per-generation record adds them to the state of the key being encoded;
* two states are equal when the older one's encoding read no bucket changed since it. A state that has read
  nothing yet (no encoding seen), or read through a matcher that keeps no clock (``note_untracked``, Forge's engine
  views with their own tokenizers), equals only a state of the same version: the old behaviour, never less safe.

It relies on what the per-generation record already relies on: the WebUI encodes a key's prompts on the thread
that asked for the key (reads on another thread would be missing from it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


class BucketClock:
    """When each ``ids_lookup`` bucket (by first token id) last changed, in database versions."""

    def __init__(self) -> None:
        self.everything = 0
        self.buckets: dict[int, int] = {}

    def touch(self, version: int, first_ids: Iterable[int] | None, explicit: int | None) -> None:
        """The tables of ``version`` differ from the previous ones in these buckets (``None``: in any). Every
        change also touches ``explicit``, the first id of every ``embedding:name`` spelling (their lookup is rebuilt
        on each change); ``None`` there (a tokenizer whose spellings start differently): everything."""
        if first_ids is None or explicit is None:
            self.everything = version
            return
        for first in (*first_ids, explicit):
            self.buckets[first] = version

    def quiet_since(self, version: int, read: Iterable[int]) -> bool:
        """No change after ``version`` touched any bucket in ``read`` (later changes count too: never too equal)."""
        if self.everything > version:
            return False
        buckets = self.buckets
        return all(buckets.get(first, 0) <= version for first in read)


@dataclass(eq=False)
class Reads:
    """The buckets one ``tokenize_line`` looked up; ``clock`` is the database's, ``untracked`` a lookup elsewhere."""

    clock: BucketClock | None = None
    ids: set[int] = field(default_factory=set)
    untracked: bool = False


_local = threading.local()


@contextmanager
def reading() -> Iterator[Reads]:
    """Collect the lookups made on this thread inside the block (one line being tokenized)."""
    outer = getattr(_local, "reads", None)
    reads = _local.reads = Reads()
    try:
        yield reads
    finally:
        _local.reads = outer


def note(clock: BucketClock, first_id: int) -> None:
    """The database's matcher looked up bucket ``first_id`` (nothing happens outside ``reading``)."""
    reads = getattr(_local, "reads", None)
    if reads is None:
        return
    if reads.clock is None:
        reads.clock = clock
    elif reads.clock is not clock:  # two databases: the ids are not comparable
        reads.untracked = True
    reads.ids.add(first_id)


def note_untracked() -> None:
    """A matcher without a clock looked something up: the line's reads cannot vouch for its encoding."""
    reads = getattr(_local, "reads", None)
    if reads is not None:
        reads.untracked = True


class TablesState:
    """The embedding tables' part of a conditioning cache key (see the module docstring)."""

    __slots__ = ("clock", "version", "read", "spoiled")

    def __init__(self, clock: BucketClock, version: int) -> None:
        self.clock, self.version = clock, version
        self.read: set[int] | None = None
        self.spoiled = False

    def add(self, reads: Reads) -> None:
        """A line of the encoding under this key was tokenized with these lookups."""
        if reads.untracked or (reads.ids and reads.clock is not self.clock):
            self.spoiled = True
        self.read = (self.read or set()) | reads.ids

    def vouches(self) -> bool:
        """Does this state know every bucket its encoding read?"""
        return self.read is not None and not self.spoiled

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TablesState) or other.clock is not self.clock:
            return NotImplemented
        if self.version == other.version:
            return True
        older = self if self.version < other.version else other
        return older.vouches() and self.clock.quiet_since(older.version, older.read)

    def __hash__(self) -> int:  # equality is not by value: every state of one clock hashes alike
        return id(self.clock)

    def __repr__(self) -> str:
        return f"TablesState(version={self.version}, read={len(self.read or ())} ids)"


def state_of(key: Any) -> TablesState | None:
    """The ``TablesState`` inside a cache key made by ``cached_params_with_embeddings``, if any."""
    for part in key if isinstance(key, tuple) else ():
        if isinstance(part, tuple) and len(part) == 2 and isinstance(part[1], TablesState):
            return part[1]
    return None
