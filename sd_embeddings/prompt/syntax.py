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
from dataclasses import dataclass, field

_TAG_HEAD = re.compile(r"<\w+:")
_AND = re.compile(r"\bAND\b")
_SIGNED_NUMBER = re.compile(r"[-+]?(?:\d+\.?|\d*\.\d+)")
_NUMBER = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*")  # no ambiguous digit runs
_PLAIN = re.compile(r"(?:[^\\\[\]():|]|\\.)+", re.S)
DEFAULT_STEPS = 20
MAX_DEPTH = 64
"""Brackets nested deeper than this are literal text: bounded recursion when rendering hostile prompts."""
_CLOSERS = {"(": ")", "[": "]"}

# Every function here reads the prompt in time linear in its length, whatever its shape: the WebUI's own regular
# expressions for tags (``<\w+:[^>]+>``) and weights (``^(.*?)(?:\s*:\s*NUMBER)?\s*$``) rescan the rest of the
# text from every ``<`` or whitespace character, which is quadratic on ``"<a:" * 10000`` or long blank runs.


def _tag_spans(text: str) -> list[tuple[int, int]]:
    r"""Where the WebUI's ``<\w+:[^>]+>`` matches (non-overlapping, left to right), with each ``>`` looked up
    once: the first ``>`` after a tag's colon ends it, so the last lookup is reused until the scan passes it."""
    spans: list[tuple[int, int]] = []
    pos, close = 0, -1
    while (start := text.find("<", pos)) >= 0:
        head = _TAG_HEAD.match(text, start)
        pos = start + 1
        if head is None:
            continue
        if close < head.end():
            close = text.find(">", head.end())
            if close < 0:
                break  # no ">" after here: no later tag can end either
        if close > head.end():  # "[^>]+": at least one character between ":" and ">"
            spans.append((start, close + 1))
            pos = close + 1
    return spans


def strip_extra_networks(text: str) -> str:
    kept, pos = [], 0
    for start, end in _tag_spans(text):
        kept.append(text[pos:start])
        pos = end
    kept.append(text[pos:])
    return "".join(kept)


def extra_networks(text: str) -> list[str]:
    """The extra-network tags of a text, as written (``["<lora:x:0.8>"]``)."""
    return [text[start:end] for start, end in _tag_spans(text)]


def _weighted(part: str) -> tuple[str, float]:
    r"""``"cat :1.5  "`` -> ``("cat", 1.5)``: the WebUI's ``^(.*?)(?:\s*:\s*NUMBER)?\s*$``, read from the end."""
    trimmed = part.rstrip()
    colon = trimmed.rfind(":")
    number = trimmed[colon + 1:].lstrip() if colon >= 0 else ""
    if _SIGNED_NUMBER.fullmatch(number):
        return trimmed[:colon].rstrip(), float(number)
    return trimmed, 1.0


def split_and(text: str) -> list[tuple[str, float]]:
    """``"cat:1.1 AND dog"`` -> ``[("cat", 1.1), ("dog", 1.0)]``: the composable-diffusion sub-prompts."""
    return [_weighted(part) for part in _AND.split(text)]


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


@dataclass
class _Parsed:
    """A bracket that parses: its node, where it ends, and how deep brackets nest in it (itself included)."""
    node: _Edit | _Alternate | _Group
    end: int
    height: int


@dataclass
class _Frame:
    """A bracket being read: its parts so far and the separators between them."""
    pos: int
    opener: str
    parts: list[list] = field(default_factory=lambda: [[]])
    separators: list[str] = field(default_factory=list)
    height: int = 1

    def node(self) -> _Edit | _Alternate | _Group | None:
        """The construct this bracket closes as, or None when it is none (then it and every bracket around it
        are literal text, as a failed parse is in the WebUI)."""
        parts, separators = self.parts, self.separators
        if self.opener == "(":
            return _Group("(", parts, ")") if separators in ([], [":"]) else None
        if not separators:
            return _Group("[", parts, "]")
        if set(separators) == {"|"}:
            return _Alternate(parts)
        if set(separators) == {":"} and len(parts) in (2, 3) and all(isinstance(n, str) for n in parts[-1]):
            number = _NUMBER.fullmatch("".join(parts[-1]))
            if number:
                return _Edit(parts[0] if len(parts) == 3 else [], parts[-2], number.group(1))
        return None


def _brackets(text: str) -> dict[int, _Parsed]:
    """Every bracket that parses, by position, in one left-to-right pass (an explicit stack, no recursion).

    A bracket fails when something inside it does not parse (a wrong closer, bad separators, the end of the
    text); then every bracket open around it fails too. Whether a bracket parses depends only on the text from
    its opener on, so each is decided once, and retrying from the next character never reads it again."""
    parsed: dict[int, _Parsed] = {}
    stack: list[_Frame] = []
    pos = 0
    while pos < len(text):
        plain = _PLAIN.match(text, pos)
        char = text[pos]
        if plain:
            if stack:
                stack[-1].parts[-1].append(plain.group(0))
            pos = plain.end()
        elif char in "([":
            stack.append(_Frame(pos, char))
            pos += 1
        elif stack and char in ":|":
            stack[-1].separators.append(char)
            stack[-1].parts.append([])
            pos += 1
        elif stack and char == _CLOSERS[stack[-1].opener] and (node := stack[-1].node()) is not None:
            frame = stack.pop()
            parsed[frame.pos] = _Parsed(node, pos + 1, frame.height)
            if stack:
                stack[-1].parts[-1].append(node)
                stack[-1].height = max(stack[-1].height, frame.height + 1)
            pos += 1
        elif stack:
            stack.clear()  # this character fails every open bracket; it is read again as top-level text
        else:
            pos += 1  # a stray closer or separator: literal text
    return parsed


def _top(text: str) -> list:
    """The prompt as nodes: a bracket that parses and nests at most ``MAX_DEPTH`` deep is a node, any other
    bracket character is literal text and reading goes on after it (so the brackets inside it may still be
    nodes). Linear: ``_brackets`` reads the text once, and this walk never goes back."""
    parsed = _brackets(text)
    nodes: list = []
    pos = 0
    while pos < len(text):
        plain = _PLAIN.match(text, pos)
        found = parsed.get(pos)
        if plain:
            nodes.append(plain.group(0))
            pos = plain.end()
        elif found is not None and found.height <= MAX_DEPTH:
            nodes.append(found.node)
            pos = found.end
        else:
            nodes.append(text[pos])
            pos += 1
    return nodes


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
    nodes = _top(text)
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
