"""The WebUI's attention syntax: prompt text -> ``[(text, weight)]`` (``prompt_parser.parse_prompt_attention``).

``(x)`` x1.1, ``(x:w)`` xw, ``[x]`` /1.1, nesting multiplies, ``\\(`` etc. are literal, unclosed brackets close at
the end, stray closers are text, ``BREAK`` is a marker part, neighbours with equal weights are merged. Two
deliberate limits keep hostile prompts harmless and the work linear in the text: weights are clamped to
+-``WEIGHT_LIMIT`` and brackets nested past ``NESTING_LIMIT`` of one kind do not weigh.
"""

from __future__ import annotations

import re

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
