"""The library's public entries kept between scans, so that a change re-resolves only the keywords it touches.

A full resolve (``collisions.resolve``) copies every file record and sorts every entry: 10,000 Python-level
steps for one dropped file. ``Resolution.update`` takes the paths a scan added, changed or removed, re-applies
compatibility and the collision rule to the keyword groups those paths were or are in, and splices the new public
entries into the sorted listing; every other public entry is kept as it is (same object). ``changed`` tells
readers (the WebUI's database) which paths got new public entries, or ``None`` after a full resolve.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Sequence

from ..records import Entry, Family, Status
from .collisions import keyword_key, listing_order, public, resolve, settle


class Resolution:
    def __init__(self) -> None:
        self.entries: tuple[Entry, ...] = ()
        self.winners: dict[str, Entry] = {}
        self.by_path: dict[str, Entry] = {}
        self.changed: frozenset[str] | None = None
        """Paths whose public entry is new (or gone) in the last update; None: all of them (a full resolve)."""

    def full(self, records: dict[str, Entry], family: Family | None, folders: Sequence[str]) -> None:
        self.entries, self.winners = resolve(records.values(), family, folders)
        self.by_path = {entry.path: entry for entry in self.entries}
        self.changed = None

    def update(self, records: dict[str, Entry], touched: Collection[str], family: Family | None,
               folders: Sequence[str]) -> None:
        """Re-resolve after ``touched`` paths were added, changed or removed in ``records``. A keyword's group is
        its winner and the paths it collides with (kept on the public entries: no index of groups is held)."""
        keys = {keyword_key(item.keyword) for path in touched
                for item in (records.get(path), self.by_path.get(path))
                if item is not None and item.file_status is Status.LOADED}
        stale = set(touched)
        for key in keys:
            winner = self.winners.get(key)
            if winner is not None:
                stale.add(winner.path)
                stale.update(winner.collides_with)
        fresh = {path: public(records[path], family) for path in stale if path in records}
        groups: dict[str, list[Entry]] = {key: [] for key in keys}
        for path, entry in fresh.items():
            if records[path].file_status is Status.LOADED:
                groups.setdefault(keyword_key(entry.keyword), []).append(entry)
        root_order = {root: i for i, root in enumerate(folders)}
        winners = dict(self.winners)
        for key, group in groups.items():
            if group:
                winners[key] = settle(group, root_order)
            else:
                winners.pop(key, None)
        self.entries, self.by_path = self._spliced(stale, fresh)
        self.winners, self.changed = winners, frozenset(stale)

    def _spliced(self, stale: set[str], fresh: dict[str, Entry]) -> tuple[tuple[Entry, ...], dict[str, Entry]]:
        """The sorted entries and the by-path table with the stale paths' entries replaced by the fresh ones."""
        kept = list(self.entries)
        for path in stale:  # found by bisection: a pass over every entry costs more than the rest of the update
            old = self.by_path.get(path)
            if old is not None:
                at = bisect.bisect_left(kept, listing_order(old), key=listing_order)
                while kept[at] is not old:  # equal keys (the same relative path in two roots): the next ones
                    at += 1
                del kept[at]
        for entry in fresh.values():
            bisect.insort(kept, entry, key=listing_order)
        by_path = dict(self.by_path)
        for path in stale:
            by_path.pop(path, None)
        by_path.update(fresh)
        return tuple(kept), by_path
