"""Which embedding a prompt's token ids name at a position: the WebUI's ``ids_lookup`` and ``embedding:name``.

Shared by the database (``LibraryDatabase``) and, on Forge, each engine's view of it (``forge2_engines``).
"""

from __future__ import annotations

from typing import Any

from .explicit_lookup import ExplicitLookup

Lookup = dict[int, list[tuple[list[int], Any]]]
"""The WebUI's ``ids_lookup``: first token id -> ``(ids, embedding)`` pairs, longest ids first."""


def match_at(lookup: Lookup, tokens: list[int], offset: int,
             explicit: ExplicitLookup | None = None) -> tuple[Any, int | None]:
    """``find_embedding_at_position``: the longest name at ``offset``, a bare keyword from ``lookup`` (the WebUI's
    ``ids_lookup``) or an ``embedding:name`` from ``explicit``; with the embedding, how many tokens it covers."""
    found = explicit.match(tokens, offset) if explicit is not None else None
    for ids, embedding in lookup.get(tokens[offset], ()):
        if tokens[offset:offset + len(ids)] == ids:
            if found is None or len(ids) >= found[1]:
                return embedding, len(ids)
            break
    return found if found is not None else (None, None)
