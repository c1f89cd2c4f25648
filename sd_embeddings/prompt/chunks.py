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
"""Attention weights are clamped to +-this: ``(x:1e999)`` never gives inf/NaN conditioning."""
NESTING_LIMIT = 64
"""Brackets of one kind open inside this many others of that kind still hide their characters but do not weigh:
each piece of text is multiplied at most this many times per kind, so parsing is linear in the prompt (8,000
nested brackets cost what 64 do; the WebUI itself would multiply 8,000 times)."""

_ATTENTION = re.compile(r"""
\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:
""", re.X)
_BREAK = re.compile(r"\bBREAK\b")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return min(max(value, -WEIGHT_LIMIT), WEIGHT_LIMIT)


class _Attention:
    """The parts of one prompt and the brackets open around the end of them (see ``parse_attention``).

    A part is ``[pieces, weight, fresh]``: text pieces joined at the end (never ``+=`` on a growing string), and
    whether text may still be added to it (no bracket opened or closed since, so later text weighs the same)."""

    def __init__(self) -> None:
        self.parts: list[list] = []
        self.open: dict[str, list[int | None]] = {"(": [], "[": []}
        """Per kind, the part index each open bracket starts at; None: nested too deep, it does not weigh."""
        self.depth = {"(": 0, "[": 0}

    def push(self, kind: str) -> None:
        weighs = self.depth[kind] < NESTING_LIMIT
        self.open[kind].append(len(self.parts) if weighs else None)
        self.depth[kind] += int(weighs)
        self._seal()

    def pop(self, kind: str, factor: float) -> None:
        start = self.open[kind].pop()
        if start is not None:
            self.depth[kind] -= 1
            for part in self.parts[start:]:
                part[1] = min(max(part[1] * factor, -WEIGHT_LIMIT), WEIGHT_LIMIT)
        self._seal()

    def text(self, piece: str, weight: float = 1.0) -> None:
        if weight == 1.0 and self.parts and self.parts[-1][2]:
            self.parts[-1][0].append(piece)
        else:
            self.parts.append([[piece], weight, weight == 1.0])

    def _seal(self) -> None:
        if self.parts:
            self.parts[-1][2] = False

    def close_all(self) -> None:
        """Unclosed brackets close at the end, round ones first, outermost first (as the WebUI does)."""
        for kind, factor in (("(", 1.1), ("[", 1 / 1.1)):
            self.open[kind].reverse()  # pop() takes the last one: make that the outermost
            while self.open[kind]:
                self.pop(kind, factor)


def parse_attention(text: str) -> list[tuple[str, float]]:
    """WebUI attention syntax -> ``[(text, weight)]``; ``("BREAK", -1.0)`` marks a forced chunk break.

    ``(x)`` x1.1, ``(x:w)`` xw, ``[x]`` /1.1, nesting multiplies, ``\\(`` etc. are literal, unclosed brackets are
    closed at the end, stray closers are text, neighbours with equal weights are merged. A weight that is not a
    number (``(x:1.2.3)``) is text; weights are clamped to +-``WEIGHT_LIMIT``; brackets nested deeper than
    ``NESTING_LIMIT`` do not weigh. Work is linear in the text.
    """
    state = _Attention()
    for match in _ATTENTION.finditer(text):
        piece, weight = match.group(0), match.group(1)
        if piece.startswith("\\"):
            state.text(piece[1:])
        elif piece in ("(", "["):
            state.push(piece)
        elif weight is not None and state.open["("]:
            factor = _number(weight)
            if factor is None:  # "(x:1.2.3)": not a number, so it is text and the bracket closes as "(x)" would
                state.text(piece[:-1])
                factor = 1.1
            state.pop("(", factor)
        elif piece == ")" and state.open["("]:
            state.pop("(", 1.1)
        elif piece == "]" and state.open["["]:
            state.pop("[", 1 / 1.1)
        else:
            _add_text(state, piece)
    state.close_all()
    return _merged(state.parts)


def split_breaks(piece: str) -> list[str]:
    """``re.split(r"\\s*\\bBREAK\\b\\s*", piece)`` (the WebUI's rule) without its quadratic rescans of long
    whitespace runs: split on the word, then strip the whitespace next to each cut."""
    pieces = _BREAK.split(piece)
    if len(pieces) == 1:
        return pieces
    return [pieces[0].rstrip(), *(middle.strip() for middle in pieces[1:-1]), pieces[-1].lstrip()]


def _add_text(state: _Attention, piece: str) -> None:
    """Plain text, with each ``BREAK`` in it as its own marker part."""
    for i, words in enumerate(split_breaks(piece)):
        if i > 0:
            state.text("BREAK", BREAK_WEIGHT)
        state.text(words)


def _merged(parts: list[list]) -> list[tuple[str, float]]:
    """Neighbours with equal weights joined (as the WebUI does); ``[("", 1.0)]`` for nothing."""
    if not parts:
        return [("", 1.0)]
    merged: list[tuple[list[str], float]] = [(list(parts[0][0]), parts[0][1])]
    for pieces, weight, _fresh in parts[1:]:
        if weight == merged[-1][1]:
            merged[-1][0].extend(pieces)
        else:
            merged.append((list(pieces), weight))
    return [("".join(pieces), weight) for pieces, weight in merged]


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
    kind: str  # "too-long" | "unusable"
    entry: Entry
    weight: float = 1.0


@dataclass
class PromptTokens:
    text: str
    chunks: list[Chunk]
    token_count: int
    """As the WebUI's counter shows it: 75 per full chunk before the last, then the last chunk's tokens."""
    notices: list[Notice] = field(default_factory=list)

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
            if indexes and indexes.unusable.buckets:
                missed = indexes.unusable.match(ids, position)
                if missed is not None:
                    notices.append(Notice("unusable", missed[0], weight))
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
    return PromptTokens(text, chunker.chunks, chunker.token_count, notices)
