"""Folders -> entries: one per embedding file found, with status, reason, keyword, family, sidecars and hash.

Scanning is incremental (a file whose stamp, size + mtime + ctime + inode, is unchanged is not read again) and
never stops on a bad file. Compatibility with the active model and keyword collisions are applied on top of what
each file holds, so switching models re-evaluates every entry without touching the disk.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ..formats.logs import get_logger
from ..records import EmbeddingData, Entry, Family, Status
from . import atomic, scan_record, sidecars
from .bulk import gc_paused
from .collisions import keyword_key
from .containment import Root
from .file_records import VerifierRecords
from .hashing import HashCache
from .reading import read_entry
from .resolution import Resolution
from .scanning import ScanReport, Skipped, keep_unchanged, walk_folders
from .verifier import Verifier

logger = get_logger(__name__)


class Library(VerifierRecords):
    """All embeddings under one or more folders. Thread-safe: readers get immutable snapshots.

    File contents (loading vectors, hashing, the background verification) are its ``checks``, a ``Verifier``
    that reaches the file records only through the ``FileRecords`` methods at the end of this class."""

    def __init__(self, folders: Iterable[str | os.PathLike], *, family: Family | None = None,
                 hash_cache: HashCache | None = None, background_hashing: bool = True,
                 deep: bool = False, cache_size: int = 512) -> None:
        """``deep`` decodes every value while scanning (CLI); otherwise scans read headers only and a
        background pass (``background_hashing``) hashes and verifies each file afterwards."""
        self.folders: list[str] = []
        for folder in folders:
            self.add_folder(folder)
        self.family = family
        self.hash_cache = hash_cache if hash_cache is not None else HashCache(None)
        self.deep = deep
        self.listeners: list[Callable[[Library], None]] = []
        self.version = 0
        self.facts = 0
        """Counts hashes and vector fingerprints as they become known (no new ``version``: prompts are the same)."""
        self._lock = threading.RLock()
        self._files: dict[str, Entry] = {}
        self._dir_stamps: dict[str, int] = {}
        self._entries: tuple[Entry, ...] = ()
        self._winners: dict[str, Entry] = {}
        self._by_path: dict[str, Entry] = {}
        self._resolution = Resolution()
        self.changes: tuple[int, frozenset[str] | None] = (0, None)
        """``(version before, paths)``: the last change of ``entries`` touched only the public entries of these
        paths (None: maybe all). A reader built from that version can update instead of rebuilding."""
        self._swept: set[str] = set()
        self._reading: list[Entry] | None = None
        self.skipped: tuple[Skipped, ...] = ()
        """What the last scan did not walk, and why (see ``scanning.Skipped``)."""
        self.checks = Verifier(self, self.hash_cache, background_hashing, cache_size)
        self._file_records: Callable[[], dict[str, Entry]] = lambda: self._files
        """What ``hash_cache.adopt`` reads: the records, never a second copy of them (the same object each scan)."""

    # -- folders and scanning ------------------------------------------------------------------------------

    def add_folder(self, folder: str | os.PathLike) -> None:
        path = os.path.abspath(os.fspath(folder))
        if path not in self.folders:
            self.folders.append(path)

    def refresh(self, force: bool = False, progress: Callable[[int, int], None] | None = None,
                changed: Iterable[str] | None = None) -> ScanReport:
        """Rescan every folder; only new or changed files (any part of the stamp) are read. ``force`` re-reads all.

        ``changed`` (from a complete watcher): only these folders are listed again, and new sub-folders in them;
        every other file keeps its entry without a ``stat``. ``progress(done, total)`` is called as files are read
        (for a progress bar on long scans).
        """
        with self._lock, gc_paused():
            self._reading = [] if not self._files else None  # the first scan shows its progress
            try:
                report = self._scan(force, changed, progress)
            finally:
                self._reading = None
        if report.any or force:
            self._notify()
        self.checks.start()
        return report

    def _scan(self, force: bool, changed: Iterable[str] | None,
              progress: Callable[[int, int], None] | None) -> ScanReport:
        report, reading, touched = ScanReport(), self._reading, []
        found, dir_stamps, files = self._walk(None if force or changed is None else sorted(changed), report)
        self._sweep(dir_stamps)
        previous = self._files
        for done, item in enumerate(found, 1):
            if progress is not None:
                progress(done, len(found))
            old = previous.get(item.path)
            if old is not None and not force and old.stamp == item.stamp:
                if old.sidecars != item.sidecars:
                    old = dataclasses.replace(old, sidecars=item.sidecars)
                    report.sidecars_changed = True
                    touched.append(item.path)
                files[item.path] = old
                continue
            files[item.path] = record = read_entry(item, self.hash_cache, self.deep, self.checks.remember)
            (report.changed if old is not None else report.added).append(item.path)
            if reading is not None:
                reading.append(record)
        report.removed = [path for path in previous if path not in files]
        self.checks.forget(report.removed + report.changed)
        self._files = files
        self._dir_stamps = dir_stamps
        if report.any or force:
            self.hash_cache.adopt(self._file_records)
            self._resolve(None if force else [*touched, *report.added, *report.changed, *report.removed])
        return report

    def _walk(self, changed: list[str] | None, report: ScanReport) -> tuple[list, dict[str, int], dict[str, Entry]]:
        """``(found files, folder stamps, entries kept as they are)``: everything, or only the ``changed`` folders."""
        if changed is not None and self._dir_stamps:
            kept = keep_unchanged(changed, self._dir_stamps, self._files, self.folders)
            if kept is not None:
                return kept
        walk = walk_folders(self.folders)
        report.loops, report.skipped = walk.loops, walk.skipped
        report.skipped_changed = tuple(walk.skipped) != self.skipped
        self.skipped = tuple(walk.skipped)
        return walk.found, walk.stamps, {}

    def _sweep(self, folders: Iterable[str]) -> None:
        """Once per folder and process: remove temporary files an interrupted write of ours left behind."""
        for folder in folders:
            if folder not in self._swept:
                self._swept.add(folder)
                atomic.remove_stale_temps(folder)

    def scanned_folders(self) -> list[str]:
        """Every folder the last scan walked (sub-folders included), e.g. for a file watcher."""
        return list(self._dir_stamps) or list(self.folders)

    def folder_stamps(self) -> dict[str, int]:
        """Every folder the last scan walked, with its mtime_ns then."""
        return dict(self._dir_stamps)

    def folders_changed(self) -> bool:
        """Cheap check (one stat per folder): was a file added, removed or renamed anywhere since the scan?"""
        for folder, stamp in self._dir_stamps.items():
            try:
                if os.stat(folder).st_mtime_ns != stamp:
                    return True
            except OSError:
                return True
        return False

    def _cache_scan(self, record: Entry) -> None:
        self.hash_cache.put_scan(record.path, record.stamp, scan_record.store(record))

    # -- statuses: compatibility and collisions ---------------------------------------------------------------

    def set_family(self, family: Family | None) -> bool:
        """Re-evaluate compatibility for a new active model family. Returns True if anything changed."""
        with self._lock:
            if family == self.family:
                return False
            self.family = family
            self._resolve()
        self._notify()
        return True

    def _resolve(self, touched: list[str] | None = None) -> None:
        """Statuses for every entry, or (``touched``) only for the keywords those paths were or are in."""
        state = self._resolution
        if touched is None or not state.by_path:
            state.full(self._files, self.family, self.folders)
        else:
            state.update(self._files, touched, self.family, self.folders)
        self._entries, self._winners, self._by_path = state.entries, state.winners, state.by_path
        self.changes = (self.version, state.changed)
        self.version += 1

    # -- reading ------------------------------------------------------------------------------------------

    @property
    def entries(self) -> tuple[Entry, ...]:
        """Every file found, sorted by keyword (case-insensitive)."""
        return self._entries

    def entries_so_far(self) -> tuple[bool, list[Entry]]:
        """``(complete, entries)`` without waiting for a scan: during a first scan, the file records read so far
        (statuses from each file alone: no compatibility or collisions applied yet), else ``entries``."""
        reading = self._reading
        if reading is not None:
            return False, list(reading)
        return True, list(self._entries)

    def usable(self) -> list[Entry]:
        return [entry for entry in self._entries if entry.status is Status.LOADED]

    def get(self, keyword: str) -> Entry | None:
        """The entry a keyword resolves to (loaded or incompatible), after collisions."""
        return self._winners.get(keyword_key(keyword))

    def find(self, path: str | os.PathLike) -> Entry | None:
        target = os.path.abspath(os.fspath(path))
        return self._by_path.get(target)

    def counts(self) -> collections.Counter[str]:
        return collections.Counter(entry.status.value for entry in self._entries)

    # -- sidecars --------------------------------------------------------------------------------------------

    sidecar_path = staticmethod(sidecars.sidecar_path)
    user_metadata = staticmethod(sidecars.user_metadata)
    description = staticmethod(sidecars.description)
    civitai_summary = staticmethod(sidecars.civitai_summary)
    metadata_path = staticmethod(sidecars.metadata_path)

    def save_user_metadata(self, entry: Entry, updates: dict) -> dict:
        """Merge ``updates`` into ``x.json`` beside a known entry (keys with value None are removed)."""
        if self.find(entry.path) is None:
            raise KeyError(f"not an entry of this library: {entry.path}")
        path = sidecars.metadata_path(entry)
        data = sidecars.user_metadata(entry)
        for key, value in updates.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        sidecars.write_user_metadata(path, data, Root.known(entry.root))
        with self._lock:
            for item in (self._files.get(entry.path), self._by_path.get(entry.path)):
                if item is not None:
                    item.sidecars = dataclasses.replace(item.sidecars, metadata_file=os.path.basename(path))
        return data

    def save_preview(self, entry: Entry, png: bytes, name: str | None = None) -> str:
        """Write ``png`` (already re-encoded by the caller) as ``x.preview.png`` beside a known entry, or as ``name``
        when that is the picture the entry shows now (a plain ``x.png`` shadowing ``x.preview.png``; never the
        entry's own file); returns the path. Raises ``KeyError`` for an unknown entry or another name, and
        ``WriteError`` when the folder cannot take the file."""
        current = self.find(entry.path)
        if current is None:
            raise KeyError(f"not an entry of this library: {entry.path}")
        if name is not None and (name != current.sidecars.preview or name == current.filename):
            raise KeyError(f"{name} is not the preview shown for {entry.path}")
        path = sidecars.preview_upload_path(entry) if name is None else os.path.join(os.path.dirname(entry.path), name)
        atomic.write_atomic(path, png, Root.known(entry.root))
        logger.info("Wrote preview %s (%d bytes)", path, len(png))
        return path

    # -- file contents (the verifier) ----------------------------------------------------------------------------

    def load(self, entry: Entry) -> EmbeddingData:
        """The vectors of an entry (decoded on first use, then cached). Raises ``EmbeddingError`` only."""
        return self.checks.load(entry)

    def verify(self, entry: Entry) -> None:
        """Read a file once: hash it (if not known) and decode every value (if not yet checked)."""
        self.checks.verify(entry)

    def ensure_hash(self, entry: Entry) -> str | None:
        """The file's sha256, computed now if the background pass has not got to it yet."""
        return self.checks.ensure_hash(entry)

    def hash_all(self, progress: Callable[[int, int], None] | None = None) -> None:
        self.checks.hash_all(self._entries, progress)

    def _notify(self) -> None:
        for listener in list(self.listeners):
            try:
                listener(self)
            except Exception:
                logger.exception("Embedding library listener failed")


def scan(folders: Sequence[str | os.PathLike] | str | os.PathLike, family: Family | None = None) -> Library:
    """Convenience: a library over ``folders``, scanned once, hashes computed in the background."""
    if isinstance(folders, (str, os.PathLike, Path)):
        folders = [folders]
    library = Library(folders, family=family)
    library.refresh()
    return library
