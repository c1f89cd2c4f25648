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
        self._groups: dict[str, list[str]] = {}
        """keyword key -> paths of the decodable files claiming it (the collision groups)."""
        self._keys: dict[str, str] = {}

    def full(self, records: dict[str, Entry], family: Family | None, folders: Sequence[str]) -> None:
        self.entries, self.winners = resolve(records.values(), family, folders)
        self.by_path = {entry.path: entry for entry in self.entries}
        self._keys = {path: keyword_key(record.keyword) for path, record in records.items()
                      if record.file_status is Status.LOADED}
        self._groups = {}
        for path, key in self._keys.items():
            self._groups.setdefault(key, []).append(path)
        self.changed = None

    def update(self, records: dict[str, Entry], touched: Collection[str], family: Family | None,
               folders: Sequence[str]) -> None:
        """Re-resolve after ``touched`` paths were added, changed or removed in ``records``."""
        keys = self._regroup(records, touched)
        stale = set(touched).union(*(self._groups.get(key, ()) for key in keys))
        fresh = {path: public(records[path], family) for path in stale if path in records}
        root_order = {root: i for i, root in enumerate(folders)}
        winners = dict(self.winners)
        for key in keys:
            group = [fresh[path] for path in self._groups.get(key, ())]
            if group:
                winners[key] = settle(group, root_order)
            else:
                winners.pop(key, None)
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
        self.entries, self.winners, self.by_path, self.changed = tuple(kept), winners, by_path, frozenset(stale)

    def _regroup(self, records: dict[str, Entry], touched: Collection[str]) -> set[str]:
        """Move the touched paths to the groups of their records now; returns every group key that changed."""
        keys: set[str] = set()
        for path in touched:
            old = self._keys.pop(path, None)
            if old is not None:
                keys.add(old)
                group = self._groups[old]
                group.remove(path)
                if not group:
                    del self._groups[old]
            record = records.get(path)
            if record is not None and record.file_status is Status.LOADED:
                key = self._keys[path] = keyword_key(record.keyword)
                self._groups.setdefault(key, []).append(path)
                keys.add(key)
        return keys
