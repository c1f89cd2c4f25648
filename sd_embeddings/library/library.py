"""Folders -> entries: one per embedding file found, with status, reason, keyword, family, sidecars and hash.

Scanning is incremental (a file whose size and mtime_ns are unchanged is not read again) and never stops on a
bad file. Compatibility with the active model and keyword collisions are applied on top of what each file holds,
so switching models re-evaluates every entry without touching the disk.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EmbeddingError, NotAnEmbeddingError
from ..formats import decoding as formats
from ..records import EmbeddingData, Entry, Family, Status
from . import collisions, scan_record, sidecars
from .bulk import gc_paused
from .checking import FileChecks
from .collisions import keyword_key
from .hashing import HashCache
from .scanning import FoundFile, walk_folders

logger = logging.getLogger(__name__)


@dataclass
class ScanReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    loops: list[str] = field(default_factory=list)
    sidecars_changed: bool = False

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.sidecars_changed)


class Library(FileChecks):
    """All embeddings under one or more folders. Thread-safe: readers get immutable snapshots."""

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
        self.background_hashing = background_hashing
        self.deep = deep
        self.listeners: list[Callable[[Library], None]] = []
        self.version = 0
        self._lock = threading.RLock()
        self._files: dict[str, Entry] = {}
        self._dir_stamps: dict[str, int] = {}
        self._entries: tuple[Entry, ...] = ()
        self._winners: dict[str, Entry] = {}
        self._data: collections.OrderedDict[str, tuple[int, int, EmbeddingData]] = collections.OrderedDict()
        self._cache_size = cache_size
        self._hasher: threading.Thread | None = None
        self._hash_wakeup = threading.Event()

    # -- folders and scanning ------------------------------------------------------------------------------

    def add_folder(self, folder: str | os.PathLike) -> None:
        path = os.path.abspath(os.fspath(folder))
        if path not in self.folders:
            self.folders.append(path)

    def refresh(self, force: bool = False, progress: Callable[[int, int], None] | None = None) -> ScanReport:
        """Rescan every folder; only new or changed files (size or mtime_ns) are read. ``force`` re-reads all.

        ``progress(done, total)`` is called as files are read (for a progress bar on long scans).
        """
        with self._lock, gc_paused():
            report = ScanReport()
            found, dir_stamps, report.loops = walk_folders(self.folders)
            previous = self._files
            files: dict[str, Entry] = {}
            for done, item in enumerate(found, 1):
                if progress is not None:
                    progress(done, len(found))
                old = previous.get(item.path)
                if old is not None and not force and (old.size, old.mtime_ns) == (item.size, item.mtime_ns):
                    if old.sidecars != item.sidecars:
                        old = dataclasses.replace(old, sidecars=item.sidecars)
                        report.sidecars_changed = True
                    files[item.path] = old
                    continue
                files[item.path] = self._read(item)
                (report.changed if old is not None else report.added).append(item.path)
            report.removed = [path for path in previous if path not in files]
            for path in report.removed + report.changed:
                self._data.pop(path, None)
            self._files = files
            self._dir_stamps = dir_stamps
            if report.any or force:
                self._resolve()
        if report.any or force:
            self._notify()
        self._start_hashing()
        return report

    def scanned_folders(self) -> list[str]:
        """Every folder the last scan walked (sub-folders included), e.g. for a file watcher."""
        return list(self._dir_stamps) or list(self.folders)

    def folders_changed(self) -> bool:
        """Cheap check (one stat per folder): was a file added, removed or renamed anywhere since the scan?"""
        for folder, stamp in self._dir_stamps.items():
            try:
                if os.stat(folder).st_mtime_ns != stamp:
                    return True
            except OSError:
                return True
        return False

    def _read(self, item: FoundFile) -> Entry:
        stem = os.path.splitext(item.name)[0]
        entry = Entry(path=item.path, root=item.root, folder=item.folder, keyword=stem, format=item.format,
                      size=item.size, mtime_ns=item.mtime_ns, status=Status.LOADED, sidecars=item.sidecars)
        entry.sha256 = self.hash_cache.get(item.path, item.size, item.mtime_ns)
        cached = None if self.deep else self.hash_cache.get_scan(item.path, item.size, item.mtime_ns)
        if cached is not None and scan_record.restore(entry, cached):
            return entry
        try:
            if item.size == 0:
                raise NotAnEmbeddingError(item.path, "empty file (0 bytes); the download or copy probably failed")
            if self.deep:
                data = formats.decode(formats.read_file(item.path), item.path)
                entry.header = formats.header_of(data)
                entry.verified = True
                self._remember(entry, data)
            else:
                entry.header = formats.scan_file(item.path, item.size)
            if item.format == "image" and entry.header.name:
                entry.keyword = entry.header.name
        except EmbeddingError as e:
            entry.status, entry.reason = Status(e.status), e.reason
            log = logger.info if entry.format == "image" and e.status == "not-an-embedding" else logger.warning
            log("Embedding %s: %s", item.path, e.reason)
        except Exception as e:  # a bug must not stop the scan; report it like a bad file (and do not cache it)
            logger.exception("Unexpected error reading %s", item.path)
            entry.status, entry.reason = Status.CORRUPT, f"unexpected error: {type(e).__name__}: {e}"
            entry.file_status, entry.file_reason = entry.status, entry.reason
            return entry
        entry.file_status, entry.file_reason = entry.status, entry.reason
        self._cache_scan(entry)
        return entry

    def _cache_scan(self, record: Entry) -> None:
        self.hash_cache.put_scan(record.path, record.size, record.mtime_ns, scan_record.store(record))

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

    def _resolve(self) -> None:
        self._entries, self._winners = collisions.resolve(self._files.values(), self.family, self.folders)
        self.version += 1

    # -- reading ------------------------------------------------------------------------------------------

    @property
    def entries(self) -> tuple[Entry, ...]:
        """Every file found, sorted by keyword (case-insensitive)."""
        return self._entries

    def usable(self) -> list[Entry]:
        return [entry for entry in self._entries if entry.status is Status.LOADED]

    def get(self, keyword: str) -> Entry | None:
        """The entry a keyword resolves to (loaded or incompatible), after collisions."""
        return self._winners.get(keyword_key(keyword))

    def find(self, path: str | os.PathLike) -> Entry | None:
        target = os.path.abspath(os.fspath(path))
        return next((entry for entry in self._entries if entry.path == target), None)

    def counts(self) -> collections.Counter[str]:
        return collections.Counter(entry.status.value for entry in self._entries)

    # -- sidecars --------------------------------------------------------------------------------------------

    sidecar_path = staticmethod(sidecars.sidecar_path)
    user_metadata = staticmethod(sidecars.user_metadata)
    description = staticmethod(sidecars.description)
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
        sidecars.write_user_metadata(path, data)
        with self._lock:
            for item in (self._files.get(entry.path), *[e for e in self._entries if e.path == entry.path]):
                if item is not None:
                    item.sidecars.metadata_file = os.path.basename(path)
        return data

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
