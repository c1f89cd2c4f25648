"""What the WebUI actually encoded in a generation: one record per prompt line, taken from its own chunks.

The WebUI matches embeddings once per line (its ``tokenize_line``, calling our database's
``find_embedding_at_position``). The adapter's ``tokenize_line`` wrapper hands each result to ``Recorder.line``, which
keeps the line's token ids and the embeddings of its chunks' ``fixes`` for the generation that asked for it, so
``TI hashes`` and the "not applied" warnings need no second tokenization.

Which generation is encoding is known from ``cached_params`` (called with ``p`` before every conditioning, cache hit
or not) and kept per thread: the WebUI encodes a generation on one thread, and its token counter, which also calls
``tokenize_line``, runs on others and is not recorded. A conditioning cache hit encodes nothing, so the lines recorded
under each recent cache key are kept (as many keys as ``KEEP``, compared with ``==`` as the WebUI compares them) and
added to the generation that hits that key: they are what the WebUI encoded for the conditioning it reuses.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .cond_cache import Reads, TablesState, state_of

ATTRIBUTE = "sd_embeddings_usage"
"""The per-generation record lives on ``p`` (a fresh one for each batch, from ``Script.process_batch``)."""
EMBEDDING_ROW = -1
"""Stands for an embedding's placeholder rows in ``LineRecord.ids``, so they never match a keyword."""
KEEP = 16


@dataclass(frozen=True)
class LineRecord:
    text: str
    ids: tuple[int, ...]
    """The line's token ids as encoded, chunk after chunk, padding dropped, embedding rows as ``EMBEDDING_ROW``."""
    embeddings: tuple[Any, ...]
    """The database's embedding objects the chunks' fixes placed, in order, each once."""


def line_record(text: str, chunks: Iterable[Any], id_end: int) -> LineRecord:
    """A ``LineRecord`` from the WebUI's ``PromptChunk`` list (``tokens``, ``fixes`` of ``(offset, embedding)``)."""
    ids: list[int] = []
    embeddings: dict[str, Any] = {}
    for chunk in chunks:
        body = list(chunk.tokens[1:-1])
        for fix in chunk.fixes:
            embeddings.setdefault(fix.embedding.name, fix.embedding)
            end = min(fix.offset + int(fix.embedding.vectors), len(body))
            body[fix.offset:end] = [EMBEDDING_ROW] * (end - fix.offset)
        ids += body[:body.index(id_end)] if id_end in body else body
    return LineRecord(text, tuple(ids), tuple(embeddings.values()))


@dataclass
class GenerationUsage:
    """The lines one batch of a generation encoded (positive, negative, hires; every schedule and AND part)."""

    lines: dict[str, LineRecord] = field(default_factory=dict)
    encoded: set[str] = field(default_factory=set)
    """Texts encoded in this batch (not taken from a cache key's earlier record)."""

    def add(self, record: LineRecord, encoded: bool = True) -> None:
        """An encoded line replaces a cached record of the same text; otherwise the first one stays (SDXL encodes
        each line twice, and the first encoder's ids are the ones the database's keywords use)."""
        if encoded and record.text not in self.encoded:
            self.encoded.add(record.text)
            self.lines[record.text] = record
        elif record.text not in self.lines:
            self.lines[record.text] = record

    def embeddings(self) -> list[Any]:
        """Every embedding placed, once per name, in the WebUI's ``TI hashes`` order: each encoding puts its names
        before the earlier ones, so the last line encoded comes first (the positive prompt before the negative)."""
        found: dict[str, Any] = {}
        for record in reversed(list(self.lines.values())):
            for embedding in record.embeddings:
                found.setdefault(embedding.name, embedding)
        return list(found.values())


def usage_of(p: Any) -> GenerationUsage:
    """The record of ``p``'s current batch (empty if nothing was encoded through the WebUI's chunker)."""
    usage = getattr(p, ATTRIBUTE, None)
    return usage if isinstance(usage, GenerationUsage) else GenerationUsage()


class Recorder:
    """Routes each ``tokenize_line`` result to the generation encoding on this thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[int, tuple[GenerationUsage, Any, TablesState | None]] = {}
        self._recent: list[tuple[Any, dict[str, LineRecord]]] = []

    def begin(self, p: Any) -> GenerationUsage:
        """A new batch of ``p`` starts: a fresh record."""
        usage = GenerationUsage()
        setattr(p, ATTRIBUTE, usage)
        return usage

    def conditioning(self, p: Any, key: Any) -> None:
        """``p`` is about to get the conditioning cached under ``key``: what that key encoded counts for ``p``."""
        usage = getattr(p, ATTRIBUTE, None)
        if not isinstance(usage, GenerationUsage):
            usage = self.begin(p)
        with self._lock:
            self._current[threading.get_ident()] = (usage, key, state_of(key))
            for record in self._lines_of(key).values():
                usage.add(record, encoded=False)

    def line(self, text: str, chunks: list[Any], id_end: int, reads: Reads | None = None) -> None:
        """The WebUI encoded ``text`` as ``chunks`` on this thread, looking up ``reads`` (for the key's state)."""
        current = self._current.get(threading.get_ident())
        if current is None:
            return  # not a generation (the token counter, another extension)
        usage, key, state = current
        if state is not None:
            state.add(reads if reads is not None else Reads(untracked=True))
        record = line_record(text, chunks, id_end)
        usage.add(record)
        with self._lock:
            self._lines_of(key, create=True)[text] = record

    def end(self) -> None:
        """This thread's generation is done: later ``tokenize_line`` calls here are not its."""
        with self._lock:
            self._current.pop(threading.get_ident(), None)

    def _lines_of(self, key: Any, create: bool = False) -> dict[str, LineRecord]:
        for index, (known, lines) in enumerate(self._recent):
            if known == key:
                self._recent.append(self._recent.pop(index))
                return lines
        lines: dict[str, LineRecord] = {}
        if create:
            self._recent.append((key, lines))
            del self._recent[:-KEEP]
        return lines

