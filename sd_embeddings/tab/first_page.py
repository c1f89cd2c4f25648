"""The order and the folder counts the tab script computes, done on the server for the cards a page carries inline.

``view_order`` sorts as the script's ``compute`` does; ``first_page_payload`` is the document the page carries, so the
first paint needs no request and builds only the cards it shows. It is kept with the library's build
(``card_pages.Snapshot``), so every page load and every tab of one library state share it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable

from ..library import Library
from ..library.bulk import gc_paused
from ..records import Entry
from . import card_pages, cards
from .cards import API_PREFIX, HIDDEN_DEFAULT, CardModel, is_hidden
from .names import shown


def _path_key(relpath: str) -> bytes:
    # the script compares lower-cased paths by UTF-16 code units; big-endian UTF-16 bytes sort the same way
    return relpath.lower().encode("utf-16-be", "surrogatepass")


_SORT_VALUES = {"path": lambda card: _path_key(card.relpath), "mtime": lambda card: card.mtime,
                "size": lambda card: card.size, "vectors": lambda card: card.vectors}
_ENTRY_SORT_VALUES = {"path": lambda entry: _path_key(shown(entry.relpath)),
                      "mtime": lambda entry: entry.mtime_ns // 1_000_000_000,
                      "size": lambda entry: entry.size, "vectors": lambda entry: entry.vectors}
"""The same values as ``_SORT_VALUES`` read from entries, so the first page is ordered before any card is built."""


def _ordered(items: list, value: Callable | None, sort_dir: str) -> list:
    # a stable sort: ties keep the library order, as the script's comparison by index does
    ordered = sorted(items, key=value) if value is not None else list(items)
    return ordered[::-1] if sort_dir == "desc" else ordered


def view_order(models: list[CardModel], sort: str, sort_dir: str) -> list[CardModel]:
    """``models`` (library order) in the order the script shows them: its ``compute`` sorts the same way.

    ``name`` keeps the library order; ``path`` compares lower-cased relative paths; the others are numbers; ties
    keep the library order; ``desc`` reverses the whole list (ties included), as ``Array.reverse`` does.
    """
    return _ordered(models, _SORT_VALUES.get(sort), sort_dir)


def _count_folders(per_folder: Counter[str]) -> dict[str, int]:
    """``per_folder`` (cards directly in each folder) with every folder's sub-folders added in (``""`` = all)."""
    counts: dict[str, int] = {}
    for folder, count in per_folder.items():
        parts = folder.split("/") if folder else []
        for depth in range(len(parts) + 1):
            key = "/".join(parts[:depth])
            counts[key] = counts.get(key, 0) + count
    return counts


def folder_counts(models: list[CardModel]) -> dict[str, int]:
    """Cards per folder, sub-folders included (``""`` = all): the numbers in the folder tree."""
    return _count_folders(Counter(card.folder for card in models))


def _visible(entries: Iterable[Entry], hidden_models: str) -> list[Entry]:
    if hidden_models == "Always":
        return list(entries)
    hidden_folders: dict[str, bool] = {}  # many cards share a folder: each folder's path is looked at once
    visible = []
    for entry in entries:
        hidden = hidden_folders.get(entry.folder)
        if hidden is None:
            hidden = hidden_folders[entry.folder] = is_hidden(entry.folder)
        if not hidden and not entry.filename.startswith("."):
            visible.append(entry)
    return visible


def _first_screen(library: Library, snap: card_pages.Snapshot, hidden_models: str, sort: str, sort_dir: str,
                  size: int) -> dict:
    with gc_paused():  # lists as long as the library: no collector passes over it meanwhile
        visible = _visible(snap.entries, hidden_models)
        first = _ordered(visible, _ENTRY_SORT_VALUES.get(sort), sort_dir)[:size]
        per_folder: Counter[str] = Counter()
        for folder, count in Counter(entry.folder for entry in visible).items():
            per_folder[shown(folder)] += count
        counts = _count_folders(per_folder)
    head = json.loads(card_pages.head_json(library, snap, card_pages.PAGE))
    rows = json.loads(card_pages.rows_json(library, snap, first))
    return {**head, **rows, "complete": False, "counts": [counts.get(folder, 0) for folder in snap.folders]}


def first_page_payload(library: Library, api: str = API_PREFIX, auto_negative: bool = True,
                       hidden_models: str = HIDDEN_DEFAULT, sort: str = "name", sort_dir: str = "asc",
                       size: int | None = None) -> dict:
    """The cards document the page carries inline, so the first paint needs no request (``api``: unused, the
    script writes preview links from the pane's own).

    Up to ``size`` cards (``cards.FIRST_PAGE``) it is the whole ``cards_payload`` with ``complete: true`` (the
    script sorts and filters it itself). Beyond that, ``cards`` holds only the first ``size`` rows the user will
    see (hidden cards left out unless ``hidden_models`` is ``Always``, in the ``sort``/``sort_dir`` order), with
    ``complete: false``, the head of ``/cards`` page 0 (``total``, ``pages``, ``folders`` ...) and ``counts``
    (cards shown per folder of ``folders``, sub-folders included) for the tree and the "N of M" count; the script
    then fetches the pages of ``/cards``. Only those ``size`` cards are built (their sidecars read), once per
    build of the library and set of options: the order and the counts come from the entries.
    """
    size = cards.FIRST_PAGE if size is None else size
    snap = card_pages.snapshot(library, auto_negative)
    if len(snap.entries) <= size:
        return {**card_pages.whole_document(library, auto_negative), "complete": True}
    key = (hidden_models, sort, sort_dir, size)
    with snap.lock:
        found = snap.firsts.get(key)
    if found is None:
        found = _first_screen(library, snap, hidden_models, sort, sort_dir, size)
        with snap.lock:
            snap.firsts[key] = found
    return {**found, **json.loads(card_pages.groups_json(library, snap))}
