"""How the verifier reads and updates a library's per-file records (``verifier.FileRecords``), as a part of
``Library``: the records of the last scan (``_files``) and the public entries (``_by_path``) are updated together,
under the library's lock where a re-resolve may follow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import EmbeddingError
from ..formats.logs import get_logger
from ..records import Entry, Status
from .verifier import needs_fingerprint

if TYPE_CHECKING:
    import threading

    from .verifier import Verifier

logger = get_logger(__name__)


class VerifierRecords:
    """Mixed into ``Library``; uses its records, lock, verifier, ``_cache_scan``, ``_resolve`` and ``_notify``."""

    _files: dict[str, Entry]
    _by_path: dict[str, Entry]
    _entries: tuple[Entry, ...]
    _lock: threading.RLock
    checks: Verifier
    facts: int

    def file_record(self, path: str) -> Entry | None:
        return self._files.get(path)

    def unchecked_files(self) -> list[Entry]:
        """Entries not yet hashed and verified, usable ones first (what prompts use first)."""
        records = self._files
        pending = [e for e in self._entries if e.path in records
                   and not (records[e.path].sha256 and records[e.path].verified)
                   or e.path in records and needs_fingerprint(records[e.path])]
        pending.sort(key=lambda e: e.status is not Status.LOADED)
        return pending

    def record_hash(self, path: str, value: str) -> None:
        self.facts += 1
        record = self._files.get(path)
        if record is not None:
            record.sha256 = value
        entry = self._by_path.get(path)
        if entry is not None:
            entry.sha256 = value

    def record_fingerprint(self, entry: Entry, value: str) -> None:
        """Note the fingerprint of ``entry``'s vectors on its records (only those of this very file version)."""
        self.facts += 1
        for item in (self._files.get(entry.path), self._by_path.get(entry.path)):
            if item is not None and item.fingerprint is None and item.stamp == entry.stamp:
                item.fingerprint = value

    def record_checked(self, record: Entry) -> None:
        with self._lock:
            record.verified = True
            self._cache_scan(record)
            entry = self._by_path.get(record.path)
            if entry is not None:
                entry.verified = True

    def record_bad(self, entry: Entry, error: EmbeddingError) -> None:
        """A file that scanned fine turned out bad when its values were read: re-resolve without it."""
        logger.warning("Embedding %s: %s", entry.path, error.reason)
        with self._lock:
            record = self._files.get(entry.path)
            if record is None or record.stamp != entry.stamp:
                return
            record.file_status, record.file_reason = Status(error.status), error.reason
            record.status, record.reason, record.verified = record.file_status, error.reason, True
            self._cache_scan(record)
            self.checks.forget([entry.path])
            self._resolve()
        self._notify()
