"""Known entries by the names the page sends back (card ids, preview paths), one table per library version.

A request then costs one dictionary look-up instead of a pass over every entry: a page of 10,000 cards asks for
10,000 previews, and each pass compared (and made printable) 10,000 names, so the page cost the square of the
library. The table is built on the first request after a rescan, from the same names the page shows.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from ..library import Library
from ..records import Entry
from .cards import card_id
from .names import shown


@dataclass(frozen=True)
class Lookup:
    source: tuple
    """What it was built from: the library's version, its entries (the same tuple) and its folders."""
    by_card: dict[str, list[Entry]]
    """Card id as shown -> entries (more than one: names that differ only in bytes that are not UTF-8)."""
    by_preview: dict[tuple[str, str, str], Entry]
    """(root, folder as shown, preview name as shown) -> the first entry with that preview, in library order."""


_TABLES: weakref.WeakKeyDictionary[Library, Lookup] = weakref.WeakKeyDictionary()


def lookup(library: Library) -> Lookup:
    entries = library.entries
    source = (library.version, entries, tuple(library.folders))
    cached = _TABLES.get(library)
    if cached is not None and cached.source[0] == source[0] and cached.source[1] is entries \
            and cached.source[2] == source[2]:
        return cached
    by_card: dict[str, list[Entry]] = {}
    by_preview: dict[tuple[str, str, str], Entry] = {}
    for entry in entries:
        by_card.setdefault(shown(card_id(library, entry)), []).append(entry)
        if entry.sidecars.preview:
            by_preview.setdefault((entry.root, shown(entry.folder), shown(entry.sidecars.preview)), entry)
    built = Lookup(source, by_card, by_preview)
    _TABLES[library] = built
    return built
