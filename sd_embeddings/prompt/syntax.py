"""The WebUI's prompt syntax around the text encoder: extra-network tags, composable ``AND``, prompt editing.

What reaches the text encoder for a prompt typed in the WebUI (reference/a1111.md §4.2), without the WebUI:

* ``strip_extra_networks``: ``<lora:name:0.8>``-style tags are removed (positive prompts only; the WebUI does
  not parse the negative prompt for them).
* ``split_and``: the positive prompt is split on the word ``AND`` into sub-prompts, each encoded on its own; a
  sub-prompt may end with ``:weight`` (default 1.0).
* ``schedule``: prompt editing ``[from:to:when]``, ``[to:when]``, ``[from::when]`` and alternation ``[a|b]``
  expand to one full text per step range. ``when`` with a ``.`` is a fraction of the steps, otherwise a step
  number. Text that does not parse as this syntax is kept as written (stray brackets are literal text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EXTRA_NETWORK = re.compile(r"<\w+:[^>]+>")
_AND = re.compile(r"\bAND\b")
_WEIGHT = re.compile(r"^(.*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$", re.S)
_NUMBER = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*")
_PLAIN = re.compile(r"(?:[^\\\[\]():|]|\\.)+", re.S)
DEFAULT_STEPS = 20
MAX_DEPTH = 64
"""Brackets nested deeper than this are literal text: bounded recursion and time for hostile prompts."""


def strip_extra_networks(text: str) -> str:
    return _EXTRA_NETWORK.sub("", text)


def extra_networks(text: str) -> list[str]:
    """The extra-network tags of a text, as written (``["<lora:x:0.8>"]``)."""
    return _EXTRA_NETWORK.findall(text)


def split_and(text: str) -> list[tuple[str, float]]:
    """``"cat:1.1 AND dog"`` -> ``[("cat", 1.1), ("dog", 1.0)]``: the composable-diffusion sub-prompts."""
    parts = []
    for part in _AND.split(text):
        match = _WEIGHT.match(part)
        assert match is not None  # the pattern matches every string
        parts.append((match.group(1), float(match.group(2)) if match.group(2) else 1.0))
    return parts


def prompt_parts(text: str) -> list[str]:
    """``"a <lora:x:1> cat AND dog:0.5"`` -> ``["a  cat", " dog"]``: what the text encoder sees, part by part
    (prompt-editing syntax left as written)."""
    return [part for part, _weight in split_and(strip_extra_networks(text))]


# -- prompt editing and alternation ---------------------------------------------------------------------------

@dataclass
class _Edit:
    before: list
    after: list
    when: str


@dataclass
class _Alternate:
    options: list[list]


@dataclass
class _Group:
    open: str
    parts: list[list]  # one part, or two separated by ":" for "(a:b)"
    close: str


class _Fail(Exception):
    pass


class _Parser:
    """Recursive descent over the WebUI's schedule grammar; a node list is ``str | _Edit | _Alternate | _Group``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def top(self) -> list:
        nodes: list = []
        while self.pos < len(self.text):
            start = self.pos
            try:
                nodes += self.sequence()
            except _Fail:
                self.pos = start
            if self.pos == start:  # a bracket or separator that opens nothing valid: literal text
                nodes.append(self.text[self.pos])
                self.pos += 1
        return nodes

    def sequence(self) -> list:
        nodes: list = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            plain = _PLAIN.match(self.text, self.pos)
            if plain:
                nodes.append(plain.group(0))
                self.pos = plain.end()
            elif char in "([":
                start = self.pos
                try:
                    nodes.append(self.bracket())
                except _Fail:
                    self.pos = start
                    return nodes
            else:
                return nodes
        return nodes

    def bracket(self) -> _Edit | _Alternate | _Group:
        if self.depth >= MAX_DEPTH:
            raise _Fail
        self.depth += 1
        try:
            return self._bracket()
        finally:
            self.depth -= 1

    def _bracket(self) -> _Edit | _Alternate | _Group:
        opener = self.text[self.pos]
        self.pos += 1
        parts, separators = [self.sequence()], []
        while self.pos < len(self.text) and self.text[self.pos] in ":|":
            separators.append(self.text[self.pos])
            self.pos += 1
            parts.append(self.sequence())
        closer = ")" if opener == "(" else "]"
        if self.pos >= len(self.text) or self.text[self.pos] != closer:
            raise _Fail
        self.pos += 1
        if opener == "(":
            if separators not in ([], [":"]):
                raise _Fail
            return _Group("(", parts, ")")
        if not separators:
            return _Group("[", parts, "]")
        if set(separators) == {"|"}:
            return _Alternate(parts)
        if set(separators) == {":"} and len(parts) in (2, 3):
            when = "".join(node for node in parts[-1] if isinstance(node, str))
            number = _NUMBER.fullmatch(when)
            if number and all(isinstance(node, str) for node in parts[-1]):
                before = parts[0] if len(parts) == 3 else []
                return _Edit(before, parts[-2], number.group(1))
        raise _Fail


def _switches(nodes: list, steps: int) -> set[int]:
    found: set[int] = set()
    for node in nodes:
        if isinstance(node, _Edit):
            when = _when(node.when, steps)
            if when >= 1:
                found.add(when)
            found |= _switches(node.before, steps) | _switches(node.after, steps)
        elif isinstance(node, _Alternate):
            found |= set(range(1, steps + 1))
            for option in node.options:
                found |= _switches(option, steps)
        elif isinstance(node, _Group):
            for part in node.parts:
                found |= _switches(part, steps)
    return found


def _when(text: str, steps: int) -> int:
    value = float(text)
    if "." in text:
        value *= steps
    return int(min(steps, value)) if value == value else steps  # NaN cannot be typed, but stay total


def _render(nodes: list, step: int, steps: int) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Edit):
            out.append(_render(node.before if step <= _when(node.when, steps) else node.after, step, steps))
        elif isinstance(node, _Alternate):
            out.append(_render(node.options[(step - 1) % len(node.options)], step, steps))
        else:
            out.append(node.open + ":".join(_render(part, step, steps) for part in node.parts) + node.close)
    return "".join(out)


def schedule(text: str, steps: int = DEFAULT_STEPS) -> list[tuple[int, str]]:
    """``"a [b:c:5]"``, 20 steps -> ``[(5, "a b"), (20, "a c")]``: ``(last step, text)`` for each step range, as
    the WebUI's prompt schedule (a text without editing syntax is one range)."""
    steps = max(1, int(steps))
    if "[" not in text:  # prompt editing and alternation always start with "["
        return [(steps, text)]
    nodes = _Parser(text).top()
    if all(isinstance(node, str) for node in nodes):
        return [(steps, text)]
    return [(step, _render(nodes, step, steps)) for step in sorted(_switches(nodes, steps) | {steps})]


def distinct_texts(text: str, steps: int = DEFAULT_STEPS) -> list[tuple[str, list[tuple[int, int]]]]:
    """Each distinct text of the schedule with its step ranges ``(first, last)``, in order of first use."""
    found: dict[str, list[tuple[int, int]]] = {}
    first = 1
    for last, rendered in schedule(text, steps):
        ranges = found.setdefault(rendered, [])
        if ranges and ranges[-1][1] == first - 1:
            ranges[-1] = (ranges[-1][0], last)
        else:
            ranges.append((first, last))
        first = last + 1
    return list(found.items())
