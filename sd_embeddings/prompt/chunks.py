"""Prompt text -> weighted fragments -> token ids -> 75-token chunks with embedding placements.

Follows the WebUI (``prompt_parser.parse_prompt_attention`` and ``tokenize_line``) with two deliberate fixes:
the comma-padding backtrack moves an embedding together with its tokens (the WebUI leaves it behind, so it
becomes ``!`` tokens; ``ChunkOptions.keep_embeddings_on_backtrack=False`` restores that for exact parity), and an
embedding with more than 75 vectors is spread over consecutive chunks with a notice instead of overflowing one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..records import Entry
from .keywords import Indexes, KeywordIndex, indexes_for, unusable_entries, usable_entries
from .tokenizer import Tokenizer

__all__ = ["Indexes", "KeywordIndex", "indexes_for", "unusable_entries", "usable_entries"]  # re-exported

CHUNK_LENGTH = 75
PLACEHOLDER_ID = 0  # what the WebUI puts where embedding rows go; the rows are replaced before the transformer
BREAK_WEIGHT = -1.0
WEIGHT_LIMIT = 1000.0
"""Attention weights are clamped to +-this: ``(x:1e999)`` or 8,000 nested brackets stay finite (never inf/NaN)."""

_ATTENTION = re.compile(r"""
\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:
""", re.X)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return min(max(value, -WEIGHT_LIMIT), WEIGHT_LIMIT)


def parse_attention(text: str) -> list[tuple[str, float]]:
    """WebUI attention syntax -> ``[(text, weight)]``; ``("BREAK", -1.0)`` marks a forced chunk break.

    ``(x)`` x1.1, ``(x:w)`` xw, ``[x]`` /1.1, nesting multiplies, ``\\(`` etc. are literal, unclosed brackets are
    closed at the end, stray closers are text, neighbours with equal weights are merged. A weight that is not a
    number (``(x:1.2.3)``) is text; weights are clamped to +-``WEIGHT_LIMIT``.
    """
    parts: list[list] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for part in parts[start:]:
            part[1] = min(max(part[1] * factor, -WEIGHT_LIMIT), WEIGHT_LIMIT)

    for match in _ATTENTION.finditer(text):
        piece, weight = match.group(0), match.group(1)
        if piece.startswith("\\"):
            parts.append([piece[1:], 1.0])
        elif piece == "(":
            round_open.append(len(parts))
        elif piece == "[":
            square_open.append(len(parts))
        elif weight is not None and round_open:
            factor = _number(weight)
            if factor is None:  # "(x:1.2.3)": not a number, so it is text and the bracket closes as "(x)" would
                parts.append([piece[:-1], 1.0])
                factor = 1.1
            multiply(round_open.pop(), factor)
        elif piece == ")" and round_open:
            multiply(round_open.pop(), 1.1)
        elif piece == "]" and square_open:
            multiply(square_open.pop(), 1 / 1.1)
        else:
            _add_text(parts, piece)
    for start in round_open:
        multiply(start, 1.1)
    for start in square_open:
        multiply(start, 1 / 1.1)
    return _merged(parts)


def _add_text(parts: list[list], piece: str) -> None:
    """Plain text, with each ``BREAK`` in it as its own marker part."""
    for i, words in enumerate(_BREAK.split(piece)):
        if i > 0:
            parts.append(["BREAK", BREAK_WEIGHT])
        parts.append([words, 1.0])


def _merged(parts: list[list]) -> list[tuple[str, float]]:
    """Neighbours with equal weights joined (as the WebUI does); ``[("", 1.0)]`` for nothing."""
    if not parts:
        return [("", 1.0)]
    merged = [parts[0]]
    for part in parts[1:]:
        if part[1] == merged[-1][1]:
            merged[-1][0] += part[0]
        else:
            merged.append(part)
    return [(piece, weight) for piece, weight in merged]


T = TypeVar("T")


def split_at_backtrack(items: list[T], cut: int, offset: Callable[[T], int]) -> tuple[list[T], list[T]]:
    """The comma-backtrack rule for embeddings, in one place for the core chunker and the WebUI repair patch.

    When a full chunk is cut after its last comma (body position ``cut``), an embedding placed at or after ``cut``
    moves with its placeholder tokens to the start of the next chunk, at ``offset - cut``. Returns
    ``(staying, moving)``; the caller re-bases the moving ones.
    """
    moving = [item for item in items if offset(item) >= cut]
    return [item for item in items if offset(item) < cut], moving


@dataclass
class Placement:
    """Embedding rows in a chunk: body positions ``offset .. offset+vectors-1`` (tensor rows one further)."""

    entry: Entry
    offset: int
    vectors: int
    weight: float
    first_row: int = 0
    chunk: int = -1


@dataclass
class Chunk:
    tokens: list[int]
    """77 ids as fed to the encoder: start, 75 body ids (placeholders ``0`` at embedding rows, end-id padding), end."""
    weights: list[float]
    placements: list[Placement]
    token_count: int
    """Body positions in use (words and embedding vectors), without padding."""


@dataclass
class Notice:
    kind: str  # "too-long" | "unusable" | "bare" (a usable keyword typed bare while bare keywords are off)
    entry: Entry
    weight: float = 1.0


@dataclass
class PromptTokens:
    text: str
    chunks: list[Chunk]
    token_count: int
    """As the WebUI's counter shows it: 75 per full chunk before the last, then the last chunk's tokens."""
    notices: list[Notice] = field(default_factory=list)
    bare_keywords: bool = True
    """Whether bare keywords fired (``ChunkOptions.bare_keywords``); the diagnostics word their hints by it."""

    @property
    def token_limit(self) -> int:
        return -(-max(self.token_count, 1) // CHUNK_LENGTH) * CHUNK_LENGTH  # the WebUI's counter target

    @property
    def placements(self) -> list[Placement]:
        return [placement for chunk in self.chunks for placement in chunk.placements]


@dataclass(frozen=True)
class ChunkOptions:
    comma_backtrack: int = 20
    """The WebUI's ``comma_padding_backtrack``: move words after a comma this close to a full chunk's end."""
    keep_embeddings_on_backtrack: bool = True
    """False reproduces the WebUI bug where a moved embedding is left behind and becomes ``!`` tokens."""
    parse_attention: bool = True
    """False = the WebUI's emphasis mode "None": brackets are plain text."""
    bare_keywords: bool = True
    """False: only ``embedding:name`` uses an embedding; a keyword typed alone stays a word. Pass the same value to
    ``indexes_for(..., bare=...)``."""


class _Chunker:
    def __init__(self, tokenizer: Tokenizer, options: ChunkOptions) -> None:
        self.tok = tokenizer
        self.options = options
        self.chunks: list[Chunk] = []
        self.token_count = 0
        self._reset()

    def _reset(self) -> None:
        self.ids: list[int] = []
        self.weights: list[float] = []
        self.placements: list[Placement] = []
        self.last_comma = -1

    def next_chunk(self, is_last: bool = False) -> None:
        used = len(self.ids)
        self.token_count += used if is_last else CHUNK_LENGTH
        pad = CHUNK_LENGTH - used
        tokens = [self.tok.bos_id, *self.ids, *[self.tok.eos_id] * pad, self.tok.eos_id]
        weights = [1.0, *self.weights, *[1.0] * pad, 1.0]
        for placement in self.placements:
            placement.chunk = len(self.chunks)
        self.chunks.append(Chunk(tokens, weights, self.placements, used))
        self._reset()

    def backtrack(self) -> None:
        """Move what follows the last comma of a full chunk into a new chunk."""
        cut = self.last_comma + 1
        moved_ids, moved_weights = self.ids[cut:], self.weights[cut:]
        if self.options.keep_embeddings_on_backtrack:
            self.placements, moved = split_at_backtrack(self.placements, cut, lambda p: p.offset)
        else:
            moved = []
        self.ids, self.weights = self.ids[:cut], self.weights[:cut]
        self.next_chunk()
        self.ids, self.weights = moved_ids, moved_weights
        for placement in moved:
            placement.offset -= cut
        self.placements = moved

    def place(self, entry: Entry, weight: float, notices: list[Notice]) -> None:
        count = entry.vectors
        if count > CHUNK_LENGTH:
            notices.append(Notice("too-long", entry, weight))
            if self.ids:
                self.next_chunk()
        elif len(self.ids) + count > CHUNK_LENGTH:
            self.next_chunk()  # an embedding is never split across a chunk edge
        for first in range(0, count, CHUNK_LENGTH):
            if len(self.ids) == CHUNK_LENGTH:
                self.next_chunk()
            rows = min(CHUNK_LENGTH, count - first)
            self.placements.append(Placement(entry, len(self.ids), rows, weight, first))
            self.ids += [PLACEHOLDER_ID] * rows
            self.weights += [weight] * rows

    def fragment(self, ids: list[int], weight: float, indexes: Indexes | None, notices: list[Notice]) -> None:
        backtrack = self.options.comma_backtrack
        position = 0
        hints = [(kind, index) for kind, index in (("unusable", indexes.unusable), ("bare", indexes.plain))
                 if index is not None and index.buckets] if indexes else []
        while position < len(ids):
            token = ids[position]
            if token == self.tok.comma_id:
                self.last_comma = len(self.ids)
            elif (backtrack and len(self.ids) == CHUNK_LENGTH and self.last_comma != -1
                  and len(self.ids) - self.last_comma <= backtrack):
                self.backtrack()
            if len(self.ids) == CHUNK_LENGTH:
                self.next_chunk()
            found = indexes.usable.match(ids, position) if indexes else None
            if found is not None:
                self.place(found[0], weight, notices)
                position += found[1]
                continue
            for kind, index in hints:
                missed = index.match(ids, position)
                if missed is not None:
                    notices.append(Notice(kind, missed[0], weight))
            self.ids.append(token)
            self.weights.append(weight)
            position += 1


def tokenize_prompt(text: str, tokenizer: Tokenizer, indexes: Indexes | None = None,
                    options: ChunkOptions | None = None) -> PromptTokens:
    """One prompt line -> chunks of 77 ids with per-token weights and embedding placements."""
    options = options or ChunkOptions()
    fragments = parse_attention(text) if options.parse_attention else [(text, 1.0)]
    chunker = _Chunker(tokenizer, options)
    notices: list[Notice] = []
    for piece, weight in fragments:
        if piece == "BREAK" and weight == BREAK_WEIGHT:
            chunker.next_chunk()
            continue
        chunker.fragment(tokenizer.encode(piece), weight, indexes, notices)
    if chunker.ids or not chunker.chunks:
        chunker.next_chunk(is_last=True)
    return PromptTokens(text, chunker.chunks, chunker.token_count, notices, options.bare_keywords)
