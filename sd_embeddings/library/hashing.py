"""What we learn from each file, cached across runs by path + stamp: its sha256 and its scan result.

The stamp is size, mtime_ns, ctime_ns and inode: a replacement copied with ``cp -p``, ``rsync -t`` or out of an
archive keeps size and mtime, but gets a new ctime. A restart then reads no file it has seen before; hashes are
computed off the startup path."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from ..formats.decoding import MAX_EMBEDDING_BYTES, open_regular
from ..formats.logs import get_logger
from ..records import Entry
from . import cache_file, scan_record
from .atomic import remove_stale_temps, write_atomic
from .bulk import gc_paused
from .containment import Root

logger = get_logger(__name__)


CACHE_DIR_ENV = "SD_EMBEDDINGS_CACHE_DIR"


def default_cache_path() -> Path:
    """The CLI's cache: ``$SD_EMBEDDINGS_CACHE_DIR/hashes.json``, else ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]) / "hashes.json"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sd-embeddings" / "hashes.json"


def sha256_file(path: str | os.PathLike, limit: int = MAX_EMBEDDING_BYTES) -> str:
    """Hash of a plain file; a FIFO or device swapped in after the scan raises OSError instead of blocking."""
    with open_regular(path) as handle:
        return sha256_open(handle, path, limit)


def sha256_open(handle: BinaryIO, path: str | os.PathLike, limit: int = MAX_EMBEDDING_BYTES) -> str:
    """Hash of an already-open file.

    A file over ``limit`` is refused as an embedding anyway, and a sparse one can claim terabytes while taking no
    disk: it raises OSError (EFBIG) before (or, if it grows, while) it is read."""
    digest = hashlib.sha256()
    left = limit - os.fstat(handle.fileno()).st_size  # the stat of the open file: no swap in between
    while left >= 0:
        block = handle.read(1024 * 1024)
        if not block:
            return digest.hexdigest()
        left -= len(block)
        digest.update(block)
    raise OSError(errno.EFBIG, f"larger than {limit // 2**20} MB, the largest embedding file; not hashed",
                  os.fspath(path))


def hashable(size: int) -> bool:
    """Will the background pass ever hash a file of this size? (Larger ones are refused, never read.)"""
    return size <= MAX_EMBEDDING_BYTES


Stamp = cache_file.Stamp
"""``Entry.stamp``: size, mtime_ns, ctime_ns, inode."""
MAX_CACHE_BYTES = cache_file.MAX_BYTES


class HashCache:
    """Per absolute path, valid while the stamp (size, mtime_ns, ctime_ns, inode) is unchanged: the full-file
    sha256 and the scan record (what the header says, or why the file is unusable; see ``Library``).

    Keyed by path (not by embedding name, unlike the WebUI's cache) so two files with the same name in
    different folders never share a hash. ``path=None`` keeps the cache in memory only. The file is read on first
    use, not when the cache is made (the WebUI makes it on its main thread, the first scan uses it on another).
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._items_loaded: dict[str, cache_file.Record] | None = None
        self._dirty = False
        self._records: Callable[[], Mapping[str, Entry]] | None = None
        self._adopted: set[str] = set()
        """Paths whose record is the library's entry (``adopt``): not held here a second time."""

    @property
    def _items(self) -> dict[str, cache_file.Record]:
        """path -> (stamp, sha256, scan row); a new stamp starts a fresh record."""
        if self._items_loaded is None:
            with self._load_lock:
                if self._items_loaded is None:
                    self._load()
        return self._items_loaded

    def _load(self) -> None:
        self._items_loaded = {}
        if self.path is None or not self.path.is_file():
            return
        remove_stale_temps(self.path.parent)
        try:
            with open_regular(self.path) as handle:  # a FIFO in its place must not block the start
                raw = handle.read(MAX_CACHE_BYTES + 1)
            if len(raw) > MAX_CACHE_BYTES:
                raise ValueError(f"larger than {MAX_CACHE_BYTES // 2**20} MB")
            with gc_paused():
                decoded = cache_file.decode(raw, str(self.path))
        except Exception as e:  # any damage at all: the cache is only an optimisation, never a reason to fail
            detail = getattr(e, "reason", None) or str(e)[:80]  # a CorruptFileError's reason already names the count
            logger.warning("Ignoring unreadable hash cache %s (%s: %s)", self.path, type(e).__name__, detail)
            return
        if decoded is None:
            logger.info("Hash cache %s is from another version; its files are read again", self.path)
            return
        self._items_loaded, skipped = decoded
        if skipped:
            logger.warning("Ignoring %d damaged record(s) in hash cache %s", skipped, self.path)

    def _current(self, path: str, stamp: Stamp) -> cache_file.Record | None:
        item = self._items.get(path)
        return item if item is not None and item[0] == tuple(stamp) else None

    def _live(self, path: str, stamp: Stamp) -> Entry | None:
        """The adopted library record of this very file version, if any."""
        records = self._records
        if records is None or path not in self._adopted:
            return None
        entry = records().get(path)
        return entry if entry is not None and entry.stamp == tuple(stamp) else None

    def get(self, path: str, stamp: Stamp) -> str | None:
        item = self._current(path, stamp)
        if item is not None:
            return item[1]
        entry = self._live(path, stamp)
        return entry.sha256 if entry is not None else None

    def put(self, path: str, stamp: Stamp, sha256: str) -> None:
        """Keep a file's hash; an adopted file's hash is kept by its library record (``Library.record_hash``)."""
        with self._lock:
            self._dirty = True
            if self._live(path, stamp) is not None:
                return
            item = self._current(path, stamp)
            self._items[path] = (tuple(stamp), sha256, item[2] if item is not None else None)

    def get_scan(self, path: str, stamp: Stamp) -> dict | None:
        item = self._current(path, stamp)
        if item is None:
            entry = self._live(path, stamp)
            return scan_record.store(entry) if entry is not None else None
        return cache_file.scan_dict(item[2]) if item[2] is not None else None  # None: damaged

    def put_scan(self, path: str, stamp: Stamp, scan: dict) -> None:
        """Keep a file's scan record; an adopted file's record is its library entry, which the caller updated."""
        with self._lock:
            self._dirty = True
            if self._live(path, stamp) is not None:
                return
            self._adopted.discard(path)  # another version of the file: its own row until the next ``adopt``
            item = self._current(path, stamp)
            self._items[path] = (tuple(stamp), item[1] if item is not None else None, cache_file.scan_row(scan))

    def adopt(self, records: Callable[[], Mapping[str, Entry]]) -> None:
        """After a scan: every cached row whose file ``records()`` (a library's file records, read on each use)
        holds with the same stamp is dropped here, and from then on read from (and saved from) that record. Two
        copies of 10,000 rows (tuples, stamps and paths beside the entries) held about 6 MB. One library at a
        time: a second one's ``adopt`` first writes the first one's rows back."""
        with self._lock:
            if self._records is not None and self._records is not records:
                self._items.update(self._rows_of_adopted())
                self._adopted = set()
            self._records = records
            live = records()
            kept: dict[str, cache_file.Record] = {}
            adopted = {path for path in self._adopted if path in live}
            for path, item in self._items.items():
                entry = live.get(path)
                if item[2] is not None and entry is not None and entry.stamp == item[0] and entry.sha256 == item[1]:
                    adopted.add(entry.path)  # the record's own string: the cache's copy of the path goes too
                else:
                    kept[path] = item
            self._items_loaded, self._adopted = kept, adopted

    def _rows_of_adopted(self) -> dict[str, cache_file.Record]:
        records = self._records() if self._records is not None else {}
        rows: dict[str, cache_file.Record] = {}
        for path in self._adopted:
            entry = records.get(path)
            if entry is not None:
                rows[path] = (entry.stamp, entry.sha256, cache_file.scan_row(scan_record.store(entry)))
        return rows

    def compute(self, path: str, stamp: Stamp, root: str | None = None) -> str:
        """The cached hash, else hash now; OSError for a file over the embedding size cap (never read), or (with
        ``root``, the embeddings folder it belongs to) one leading outside that folder (``OutsideError``)."""
        cached = self.get(path, stamp)
        if cached is not None:
            return cached
        if root is None:
            value = sha256_file(path)
        else:
            with Root.known(root).reader(path) as handle:
                value = sha256_open(handle, path)
        self.put(path, stamp, value)
        return value

    def save(self) -> None:
        """Write atomically (temp file + rename); a failure only costs re-hashing next time."""
        if self.path is None:
            return
        with self._lock:
            if not self._dirty:
                return
            items = dict(self._items)
            items.update(self._rows_of_adopted())
            self._dirty = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, cache_file.encode(items))
        except OSError as e:
            logger.warning("Could not write hash cache %s: %s", self.path, e)
