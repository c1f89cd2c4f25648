"""Text from files and file names made safe to show, print and put in JSON: the one helper every room uses.

On Linux a file name is bytes; Python hands back the bytes that are not UTF-8 as lone surrogates
(``b'caf\\xe9.pt'`` -> ``'caf\\udce9.pt'``), and JSON or a strict UTF-8 stream refuses those; a JSON ``"\\ud800"``
escape or a pickled string gives the same. ``shown`` replaces each lone surrogate with U+FFFD. A terminal also
obeys control characters (ESC starts a colour or cursor sequence), so ``printable`` escapes them as well.
JSON read from a stranger's file is cleaned by ``clean_json`` before anything shows it or writes it back.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 controls (ESC, CSI), line and paragraph separators and bidi overrides: all rewrite what a reader sees."""
_STREAM_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""The same, less the newline and tab a program's own output is made of (a carriage return inside a name would
let it overwrite the start of its line)."""
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""What ``json.dumps(ensure_ascii=False)`` leaves raw (it escapes C0 itself): only ever inside strings."""
REPLACEMENT = "\ufffd"
MAX_JSON_DEPTH = 32
"""Deepest container kept from a sidecar (the WebUI's own metadata is 1 deep; a Civitai-like one under 6)."""


def shown(text: str) -> str:
    """``text`` with every lone surrogate (an undecodable byte) replaced by U+FFFD; valid text is unchanged."""
    return text if text.isascii() else _SURROGATE.sub(REPLACEMENT, text)


def has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def printable(text: str) -> str:
    """``shown`` plus control characters written as escapes (``\\x1b``), for a terminal or a log line."""
    return _CONTROL.sub(_escaped, shown(text))


def _escaped(match: re.Match) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def terminal_text(text: str) -> str:
    """A whole chunk of program output made safe for a terminal: lines stay lines, nothing else controls it."""
    return _STREAM_CONTROL.sub(_escaped, shown(text))


def json_text(value: Any, indent: int | None = None) -> str:
    """Strict JSON (no NaN, valid UTF-8, non-ASCII kept) with nothing a terminal would obey, even inside strings."""
    text = json.dumps(clean_json(value), indent=indent, ensure_ascii=False, allow_nan=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_DROP = object()


def clean_json(value: Any, depth: int = MAX_JSON_DEPTH) -> Any:
    """A parsed JSON value that can always be shown and written again as strict UTF-8 JSON: non-finite numbers
    are dropped, lone surrogates replaced (in keys too), containers deeper than ``depth`` dropped. Recursion is
    bounded by ``depth``, so a deep document costs nothing past it."""
    cleaned = _clean(value, depth)
    return None if cleaned is _DROP else cleaned


def _clean(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else _DROP
    if isinstance(value, dict):
        if depth <= 0:
            return _DROP
        pairs = ((shown(str(key)), _clean(item, depth - 1)) for key, item in value.items())
        return {key: item for key, item in pairs if item is not _DROP}
    if isinstance(value, list):
        if depth <= 0:
            return _DROP
        return [item for item in (_clean(item, depth - 1) for item in value) if item is not _DROP]
    return value
