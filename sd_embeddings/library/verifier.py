"""Reading file contents after a scan: vectors loaded on use (small LRU), and the background pass that hashes and
fully verifies each file (scans read headers only), most useful files first.

The ``Verifier`` is owned by a ``Library`` and talks to it only through the ``FileRecords`` interface below.
Each file's work is isolated: whatever one file raises becomes that file's ``corrupt`` status with a reason, and
the background worker goes on to the next file (it never dies on a file).
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading
from collections.abc import Callable
from typing import Protocol

from ..errors import ChangedFileError, CorruptFileError, EmbeddingError
from ..formats import decoding as formats
from ..formats.logs import get_logger
from ..records import EmbeddingData, Entry, Status, stat_stamp
from . import vectors
from .bulk import release_memory
from .containment import Root, read_embedding
from .hashing import HashCache

logger = get_logger(__name__)

IDLE_EXIT_S = 30
"""The worker thread ends after this long without work; the next scan starts a new one."""
RELEASE_AFTER = 256
"""A pass over at least this many files ends by handing the memory it freed back (``bulk.release_memory``)."""
SAVE_AT_ONCE = 64
"""A pass over at least this many files saves the scan cache when it ends. A smaller one (files dropped in) leaves
the save to the worker's idle exit: writing 10,000 rows held the interpreter for about a second, which the
generation that followed the drop paid. Rows not saved yet only cost a re-read after a restart."""


class FileRecords(Protocol):
    """What the verifier needs from its library: the per-file records and ways to update them."""

    def file_record(self, path: str) -> Entry | None: ...

    def unchecked_files(self) -> list[Entry]: ...

    def record_hash(self, path: str, value: str) -> None: ...

    def record_checked(self, record: Entry) -> None: ...

    def record_bad(self, entry: Entry, error: EmbeddingError) -> None: ...

    def record_fingerprint(self, entry: Entry, value: str) -> None: ...


def unexpected(path: str, error: BaseException) -> CorruptFileError:
    """A ``corrupt`` status for an error no decoder should raise, naming its type and (plain text) message."""
    message = error.args[0] if len(error.args) == 1 and isinstance(error.args[0], str) else ""
    detail = f"{type(error).__name__}: {message[:120]}" if message else type(error).__name__
    return CorruptFileError(path, f"cannot be read ({detail})")


class Verifier:
    """Loads, hashes and verifies the files of one library; owns the decoded-vector cache and the worker."""

    def __init__(self, records: FileRecords, hash_cache: HashCache, background: bool, cache_size: int) -> None:
        self.records = records
        self.hash_cache = hash_cache
        self.background = background
        self.idle = threading.Event()
        """Set while the worker has nothing left to do (tests and benchmarks wait on it)."""
        self._cache: collections.OrderedDict[str, tuple[tuple[int, ...], EmbeddingData]] = collections.OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wakeup = threading.Event()

    # -- decoded vectors -------------------------------------------------------------------------------------

    def load(self, entry: Entry) -> EmbeddingData:
        """The vectors of an entry (decoded on first use, then kept in a small LRU cache)."""
        with self._lock:
            cached = self._cache.get(entry.path)
            if cached and cached[0] == entry.stamp:
                self._cache.move_to_end(entry.path)
                return cached[1]
        try:
            data = _decode(read_embedding(Root.known(entry.root), entry.path), entry.path)
        except EmbeddingError as e:
            self.records.record_bad(entry, e)
            raise
        if _replaced(entry):  # another version's vectors: never hand them out (or cache them) as this one's
            raise ChangedFileError(entry.path, "the file changed after it was scanned; rescan and retry")
        self.remember(entry, data)
        return data

    def remember(self, entry: Entry, data: EmbeddingData) -> None:
        """Keep decoded vectors (small LRU) and note their fingerprint on the entry and its records."""
        self.note_fingerprint(entry, data)
        with self._lock:
            self._cache[entry.path] = (entry.stamp, data)
            self._cache.move_to_end(entry.path)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def note_fingerprint(self, entry: Entry, data: EmbeddingData) -> None:
        if entry.fingerprint is None:
            entry.fingerprint = vectors.fingerprint(data)
            self.records.record_fingerprint(entry, entry.fingerprint)

    def forget(self, paths: list[str]) -> None:
        with self._lock:
            for path in paths:
                self._cache.pop(path, None)

    # -- hashing and verification ----------------------------------------------------------------------------

    def verify(self, entry: Entry) -> None:
        """Read a file once: hash it (if not known) and decode every value (if not yet checked)."""
        record = self.records.file_record(entry.path)
        if record is None or (record.verified and record.sha256 and not needs_fingerprint(record)):
            return
        try:
            raw = read_embedding(Root.known(entry.root), entry.path)
        except EmbeddingError as e:
            if (e.status, e.reason) != (getattr(record.file_status, "value", None), record.file_reason):
                self.records.record_bad(entry, e)  # a failure already recorded (a link out) is not news
            return
        if _replaced(record):  # the next scan reads the new file; its hash and values are not this record's
            return
        if record.sha256 is None and len(raw) == record.size:
            value = hashlib.sha256(raw).hexdigest()
            self.hash_cache.put(entry.path, record.stamp, value)
            self.records.record_hash(entry.path, value)
        if (record.verified and not needs_fingerprint(record)) or record.file_status is not Status.LOADED:
            return
        try:
            data = _decode(raw, entry.path)
        except EmbeddingError as e:
            self.records.record_bad(entry, e)
            return
        # only the fingerprint is kept, not the values: the pass goes over every file, and 512 of them (the LRU's
        # size, chosen by the order of the pass, not by use) held several MB for nothing; a prompt's first use
        # reads its file again
        self.note_fingerprint(record, data)
        self.records.record_checked(record)

    def check_isolated(self, entry: Entry) -> None:
        """``verify`` for the worker: whatever goes wrong stays this file's problem."""
        try:
            self.verify(entry)
        except Exception as e:  # a bug reached by one file must not stop the others from being checked
            logger.exception("Unexpected error checking %s", entry.path)
            try:
                self.records.record_bad(entry, unexpected(entry.path, e))
            except Exception:
                logger.exception("Could not record the failure of %s", entry.path)

    def ensure_hash(self, entry: Entry) -> str | None:
        """The file's sha256, computed now if the background worker has not got to it yet."""
        if entry.sha256 is None:
            try:
                value = self.hash_cache.compute(entry.path, entry.stamp, entry.root)
            except OSError as e:
                logger.warning("Cannot hash %s: %s", entry.path, e)
                return None
            self.records.record_hash(entry.path, value)
            entry.sha256 = value
        return entry.sha256

    def hash_all(self, entries: tuple[Entry, ...], progress: Callable[[int, int], None] | None = None) -> None:
        """Hash every entry now (CLI, benchmarks) and persist the cache."""
        for done, entry in enumerate(entries, 1):
            self.ensure_hash(entry)
            if progress is not None:
                progress(done, len(entries))
        self.hash_cache.save()

    # -- the background worker -------------------------------------------------------------------------------

    def start(self) -> None:
        if not self.background:
            return
        with self._lock:  # pairs with the exit check in _run: work is never left with no thread to do it
            self.idle.clear()
            self._wakeup.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sd-embeddings-hasher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            if not self._wakeup.wait(timeout=IDLE_EXIT_S):
                self._save_quietly()  # what small passes left unsaved
                with self._lock:
                    if not self._wakeup.is_set():
                        self._thread = None
                        return
            self._wakeup.clear()
            try:
                self._one_pass()
            except Exception:  # only our own bookkeeping can get here; the files were isolated one by one
                logger.exception("Background check pass failed; it resumes on the next scan")
            with self._lock:
                if not self._wakeup.is_set():
                    self.idle.set()

    def _one_pass(self) -> None:
        pending = self.records.unchecked_files()
        for entry in pending:
            self.check_isolated(entry)
        if len(pending) >= SAVE_AT_ONCE:
            self.hash_cache.save()
        if len(pending) >= RELEASE_AFTER:
            release_memory()

    def _save_quietly(self) -> None:
        try:
            self.hash_cache.save()
        except Exception:  # only our own bookkeeping can get here (save logs OSError itself)
            logger.exception("Could not save the scan cache; the files are read again after a restart")


def _decode(raw: bytes, path: str) -> EmbeddingData:
    """``formats.decode`` that raises only ``EmbeddingError``: an unexpected exception is this file's problem."""
    try:
        return formats.decode(raw, path)
    except EmbeddingError:
        raise
    except Exception as e:  # MemoryError and RecursionError included
        logger.exception("Unexpected error decoding %s", path)
        raise unexpected(path, e) from e


def needs_fingerprint(record: Entry) -> bool:
    """A usable file whose vectors were checked before fingerprints existed (an older scan cache)."""
    return record.fingerprint is None and record.file_status is Status.LOADED


def _replaced(entry: Entry) -> bool:
    """Is the file on disk no longer the one the entry was scanned from (other stamp, or gone)?"""
    try:
        info = os.stat(entry.path)
    except OSError:
        return True
    return stat_stamp(info) != entry.stamp
