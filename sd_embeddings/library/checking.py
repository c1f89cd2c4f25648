"""The part of ``Library`` that reads file contents after a scan: loading vectors on use, and the background
pass that hashes and fully verifies each file (scans read headers only), most useful files first.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import threading
from collections.abc import Callable

from ..errors import ChangedFileError, EmbeddingError
from ..formats import decoding as formats
from ..records import EmbeddingData, Entry, Status
from .hashing import HashCache

logger = logging.getLogger(__name__)


class FileChecks:
    """Mixed into ``Library``; uses its file records, snapshot, lock and cache (declared below)."""

    hash_cache: HashCache
    background_hashing: bool
    _lock: threading.RLock
    _files: dict[str, Entry]
    _entries: tuple[Entry, ...]
    _data: collections.OrderedDict[str, tuple[int, int, EmbeddingData]]
    _cache_size: int
    _hasher: threading.Thread | None
    _hash_wakeup: threading.Event
    _resolve: Callable[[], None]
    _notify: Callable[[], None]
    _cache_scan: Callable[[Entry], None]

    def load(self, entry: Entry) -> EmbeddingData:
        """The vectors of an entry (decoded on first use, then kept in a small LRU cache)."""
        with self._lock:
            cached = self._data.get(entry.path)
            if cached and cached[:2] == (entry.size, entry.mtime_ns):
                self._data.move_to_end(entry.path)
                return cached[2]
        try:
            data = formats.decode(formats.read_file(entry.path), entry.path)
        except EmbeddingError as e:
            self._mark_bad(entry, e)
            raise
        if _replaced(entry):  # these are another version's vectors: never hand them out (or cache them) as this one's
            raise ChangedFileError(entry.path, "the file changed after it was scanned; rescan and retry")
        with self._lock:
            self._remember(entry, data)
        return data

    def _mark_bad(self, entry: Entry, error: EmbeddingError) -> None:
        """A file that scanned fine turned out bad when its values were read: re-resolve without it."""
        logger.warning("Embedding %s: %s", entry.path, error.reason)
        with self._lock:
            record = self._files.get(entry.path)
            if record is None or (record.size, record.mtime_ns) != (entry.size, entry.mtime_ns):
                return
            record.file_status, record.file_reason = Status(error.status), error.reason
            record.status, record.reason, record.verified = record.file_status, error.reason, True
            self._cache_scan(record)
            self._data.pop(entry.path, None)
            self._resolve()
        self._notify()

    def verify(self, entry: Entry) -> None:
        """Read a file once: hash it (if not known) and decode every value (if not yet checked)."""
        record = self._files.get(entry.path)
        if record is None or (record.verified and record.sha256):
            return
        try:
            raw = formats.read_file(entry.path)
        except EmbeddingError as e:
            self._mark_bad(entry, e)
            return
        if _replaced(record):  # the next scan reads the new file; its hash and values are not this record's
            return
        if record.sha256 is None and len(raw) == record.size:
            value = hashlib.sha256(raw).hexdigest()
            self.hash_cache.put(entry.path, record.size, record.mtime_ns, value)
            self._set_hash(entry.path, value)
        if record.verified or record.file_status is not Status.LOADED:
            return
        try:
            data = formats.decode(raw, entry.path)
        except EmbeddingError as e:
            self._mark_bad(entry, e)
            return
        with self._lock:
            record.verified = True
            self._remember(record, data)
            self._cache_scan(record)

    def _remember(self, entry: Entry, data: EmbeddingData) -> None:
        self._data[entry.path] = (entry.size, entry.mtime_ns, data)
        self._data.move_to_end(entry.path)
        while len(self._data) > self._cache_size:
            self._data.popitem(last=False)

    # -- hashes ---------------------------------------------------------------------------------------------

    def ensure_hash(self, entry: Entry) -> str | None:
        """The file's sha256, computed now if the background hasher has not got to it yet."""
        if entry.sha256 is None:
            try:
                value = self.hash_cache.compute(entry.path, entry.size, entry.mtime_ns)
            except OSError as e:
                logger.warning("Cannot hash %s: %s", entry.path, e)
                return None
            self._set_hash(entry.path, value)
            entry.sha256 = value
        return entry.sha256

    def _set_hash(self, path: str, value: str) -> None:
        record = self._files.get(path)
        if record is not None:
            record.sha256 = value
        for entry in self._entries:
            if entry.path == path:
                entry.sha256 = value

    def _start_hashing(self) -> None:
        if not self.background_hashing:
            return
        with self._lock:  # pairs with the exit check in _hash_loop: work is never left with no thread to do it
            self._hash_wakeup.set()
            if self._hasher is None or not self._hasher.is_alive():
                self._hasher = threading.Thread(target=self._hash_loop, name="sd-embeddings-hasher", daemon=True)
                self._hasher.start()

    def _hash_loop(self) -> None:
        while True:
            if not self._hash_wakeup.wait(timeout=30):
                with self._lock:
                    if not self._hash_wakeup.is_set():
                        self._hasher = None
                        return
            self._hash_wakeup.clear()
            records = self._files
            pending = [e for e in self._entries if e.path in records
                       and not (records[e.path].sha256 and records[e.path].verified)]
            pending.sort(key=lambda e: e.status is not Status.LOADED)  # what prompts use first
            for entry in pending:
                self.verify(entry)
            self.hash_cache.save()

    def hash_all(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Hash every entry now (CLI, benchmarks) and persist the cache."""
        entries = self._entries
        for done, entry in enumerate(entries, 1):
            self.ensure_hash(entry)
            if progress is not None:
                progress(done, len(entries))
        self.hash_cache.save()


def _replaced(entry: Entry) -> bool:
    """Is the file on disk no longer the one the entry was scanned from (other size or mtime, or gone)?"""
    try:
        info = os.stat(entry.path)
    except OSError:
        return True
    return (info.st_size, info.st_mtime_ns) != (entry.size, entry.mtime_ns)
