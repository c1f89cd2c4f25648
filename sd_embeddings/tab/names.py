"""Names as text a page and a JSON document can carry.

File names on Linux are bytes; Python decodes the ones that are not UTF-8 with lone surrogates (``caf\\udce9``),
which cannot be encoded as UTF-8 (a JSON answer or an HTML page with one fails to encode). ``shown(text)`` replaces
each lone surrogate with U+FFFD, the replacement character, so such a file is listed as ``caf\ufffd.pt``.
Ids sent back by the page are compared with ``shown`` of the real name, never used as a path.
"""

from __future__ import annotations

from ..formats.text import has_surrogate, shown  # one helper for every room (formats, library, tab, cli)

__all__ = ["has_surrogate", "shown"]
