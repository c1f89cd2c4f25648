"""The order and the folder counts the tab script computes, done on the server for the cards a page carries inline.

``view_order`` sorts as the script's ``compute`` does; ``first_page_payload`` is the document the page carries, so the
first paint needs no request and builds only the cards it shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict

from ..library import Library
from .cards import (
    API_PREFIX,
    CARD_STATUSES,
    FIRST_PAGE,
    HIDDEN_DEFAULT,
    CardModel,
    card_model,
    cards_document,
    cards_payload,
    is_hidden,
)
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
    indexed = list(enumerate(items))
    if value is not None:
        indexed.sort(key=lambda pair: (value(pair[1]), pair[0]))
    ordered = [item for _, item in indexed]
    return ordered[::-1] if sort_dir == "desc" else ordered


def view_order(models: list[CardModel], sort: str, sort_dir: str) -> list[CardModel]:
    """``models`` (library order) in the order the script shows them: its ``compute`` sorts the same way.

    ``name`` keeps the library order; ``path`` compares lower-cased relative paths; the others are numbers; ties
    keep the library order; ``desc`` reverses the whole list (ties included), as ``Array.reverse`` does.
    """
    return _ordered(models, _SORT_VALUES.get(sort), sort_dir)


def _count_folders(folders: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for folder in folders:
        parts = folder.split("/") if folder else []
        for depth in range(len(parts) + 1):
            key = "/".join(parts[:depth])
            counts[key] = counts.get(key, 0) + 1
    return counts


def folder_counts(models: list[CardModel]) -> dict[str, int]:
    """Cards per folder, sub-folders included (``""`` = all): the numbers in the folder tree."""
    return _count_folders(card.folder for card in models)


def first_page_payload(library: Library, api: str = API_PREFIX, auto_negative: bool = True,
                       hidden_models: str = HIDDEN_DEFAULT, sort: str = "name", sort_dir: str = "asc",
                       size: int = FIRST_PAGE) -> dict:
    """The cards document the page carries inline, so the first paint needs no request.

    Up to ``size`` cards it is the whole ``cards_payload`` with ``complete: true`` (the script sorts and filters it
    itself). Beyond that, ``cards`` holds only the first ``size`` rows the user will see (hidden cards left out
    unless ``hidden_models`` is ``Always``, in the ``sort``/``sort_dir`` order), with ``complete: false``,
    ``total`` (all cards) and ``counts`` (``folder_counts`` of the shown cards) for the tree and the "N of M"
    count; the script then fetches the whole document. Only those ``size`` cards are built (their sidecars read):
    the order and the counts come from the entries.
    """
    entries = [entry for entry in library.entries if entry.status in CARD_STATUSES]
    if len(entries) <= size:
        return {**cards_payload(library, api, auto_negative), "complete": True}
    visible = [entry for entry in entries if hidden_models == "Always" or not is_hidden(entry.relpath)]
    first = _ordered(visible, _ENTRY_SORT_VALUES.get(sort), sort_dir)[:size]
    rows = [list(asdict(card_model(library, entry, api, auto_negative)).values()) for entry in first]
    return {**cards_document(library, rows, auto_negative), "complete": False, "total": len(entries),
            "counts": _count_folders(shown(entry.folder) for entry in visible)}
