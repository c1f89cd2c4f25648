"""Names as text a page and a JSON document can carry.

File names on Linux are bytes; Python decodes the ones that are not UTF-8 with lone surrogates (``caf\\udce9``),
which cannot be encoded as UTF-8 (a JSON answer or an HTML page with one fails to encode). ``shown(text)`` replaces
each lone surrogate with U+FFFD, the replacement character, so such a file is listed as ``caf\ufffd.pt``.
Ids sent back by the page are compared with ``shown`` of the real name, never used as a path.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def shown(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (unchanged, and fast, when there is none)."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None
