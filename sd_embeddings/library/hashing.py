"""What we learn from each file, cached across runs by path + stamp: its sha256 and its scan result.

The stamp is size, mtime_ns, ctime_ns and inode: a replacement copied with ``cp -p``, ``rsync -t`` or out of an
archive keeps size and mtime, but gets a new ctime. A restart then reads no file it has seen before; hashes are
computed off the startup path."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Any, BinaryIO

from ..formats import json_limits
from ..formats.decoding import MAX_EMBEDDING_BYTES, open_regular
from ..formats.logs import get_logger
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


Stamp = tuple[int, int, int, int]
"""``Entry.stamp``: size, mtime_ns, ctime_ns, inode."""
_STAMP_FIELDS = ("size", "mtime_ns", "ctime_ns", "inode")
CACHE_VERSION = 3
"""Version 3 added ctime_ns and inode to each record; an older cache is dropped and its files are read again."""


MAX_CACHE_BYTES = 256 * 1024 * 1024
"""Far above a 100,000-file library's cache (about 40 MB); anything bigger is not ours to trust."""
CACHE_LIMITS = json_limits.JsonLimits(size=MAX_CACHE_BYTES, values=3_000_000, containers=600_000, strings=4_000_000)
"""About twice what a 100,000-file library's cache holds (17 values, 3 containers, 20 strings per file)."""
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _record(item: object) -> tuple[Stamp, dict[str, Any]] | None:
    """One cache record, or None when any field has the wrong type or range (a damaged or edited file)."""
    if not isinstance(item, dict):
        return None
    stamp, sha, scan = tuple(item.get(name) for name in _STAMP_FIELDS), item.get("sha256"), item.get("scan")
    if not all(type(v) is int and 0 <= v < 2**64 for v in stamp):
        return None  # also refuses floats such as 1e999 (inf) and booleans
    if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        return None
    if scan is not None and not isinstance(scan, dict):
        return None
    fields = {name: value for name, value in (("sha256", sha), ("scan", scan)) if value}
    return stamp, fields


class HashCache:
    """Per absolute path, valid while the stamp (size, mtime_ns, ctime_ns, inode) is unchanged: the full-file
    sha256 and the scan record (what the header says, or why the file is unusable; see ``Library``).

    Keyed by path (not by embedding name, unlike the WebUI's cache) so two files with the same name in
    different folders never share a hash. ``path=None`` keeps the cache in memory only.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._items: dict[str, tuple[Stamp, dict[str, Any]]] = {}
        """path -> (stamp, {"sha256": str, "scan": dict}); a new stamp starts a fresh record."""
        self._dirty = False
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        remove_stale_temps(self.path.parent)
        try:
            if self.path.stat().st_size > MAX_CACHE_BYTES:
                raise ValueError(f"larger than {MAX_CACHE_BYTES // 2**20} MB")
            with gc_paused():
                skipped = self._read_document()
        except Exception as e:  # any damage at all: the cache is only an optimisation, never a reason to fail
            self._items.clear()
            detail = getattr(e, "reason", None) or str(e)[:80]  # a CorruptFileError's reason already names the count
            logger.warning("Ignoring unreadable hash cache %s (%s: %s)", self.path, type(e).__name__, detail)
            return
        if skipped:
            logger.warning("Ignoring %d damaged record(s) in hash cache %s", skipped, self.path)

    def _read_document(self) -> int:
        """Load every well-formed record; returns how many were skipped as damaged."""
        with open_regular(self.path) as handle:  # a FIFO in its place must not block the start
            raw = handle.read(MAX_CACHE_BYTES + 1)
        json_limits.check(raw, CACHE_LIMITS, str(self.path), "the hash cache")
        document = json.loads(raw.decode("utf-8"))
        if isinstance(document, dict) and document.get("version") != CACHE_VERSION:
            logger.info("Hash cache %s is from an older version; its files are read again", self.path)
            return 0
        files = document.get("files") if isinstance(document, dict) else None
        if not isinstance(files, dict):
            raise ValueError("no 'files' object")
        skipped = 0
        for key, item in files.items():
            record = _record(item)
            if record is None:
                skipped += 1
            else:
                self._items[key] = record
        return skipped

    def _get(self, path: str, stamp: Stamp, name: str) -> Any:
        with self._lock:
            item = self._items.get(path)
        if item and item[0] == tuple(stamp):
            return item[1].get(name)
        return None

    def _put(self, path: str, stamp: Stamp, name: str, value: Any) -> None:
        stamp = tuple(stamp)
        with self._lock:
            item = self._items.get(path)
            fields = dict(item[1]) if item and item[0] == stamp else {}
            fields[name] = value
            self._items[path] = (stamp, fields)
            self._dirty = True

    def get(self, path: str, stamp: Stamp) -> str | None:
        value = self._get(path, stamp, "sha256")
        return str(value) if value else None

    def put(self, path: str, stamp: Stamp, sha256: str) -> None:
        self._put(path, stamp, "sha256", sha256)

    def get_scan(self, path: str, stamp: Stamp) -> dict | None:
        value = self._get(path, stamp, "scan")
        return value if isinstance(value, dict) else None

    def put_scan(self, path: str, stamp: Stamp, scan: dict) -> None:
        self._put(path, stamp, "scan", scan)

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
            files = {key: {**dict(zip(_STAMP_FIELDS, stamp)), **fields} for key, (stamp, fields) in self._items.items()}
            self._dirty = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps({"version": CACHE_VERSION, "files": files}).encode("utf-8"))
        except OSError as e:
            logger.warning("Could not write hash cache %s: %s", self.path, e)
