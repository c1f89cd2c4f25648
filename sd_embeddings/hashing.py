"""What we learn from each file, cached across runs by path + size + mtime: its sha256 and its scan result.

A restart then reads no file it has seen before; hashes are computed off the startup path."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sd-embeddings" / "hashes.json"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Stamp:
    size: int
    mtime_ns: int


class HashCache:
    """Per absolute path, valid while size and mtime_ns are unchanged: the full-file sha256 and the scan record
    (what the header says, or why the file is unusable; see ``Library``).

    Keyed by path (not by embedding name, unlike the WebUI's cache) so two files with the same name in
    different folders never share a hash. ``path=None`` keeps the cache in memory only.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._items: dict[str, tuple[_Stamp, str | None]] = {}
        self._scans: dict[str, tuple[_Stamp, dict]] = {}
        self._dirty = False
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            for key, item in document.get("files", {}).items():
                stamp = _Stamp(int(item["size"]), int(item["mtime_ns"]))
                if item.get("sha256"):
                    self._items[key] = (stamp, str(item["sha256"]))
                if isinstance(item.get("scan"), dict):
                    self._scans[key] = (stamp, item["scan"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            logger.warning("Ignoring unreadable hash cache %s (%s)", self.path, e)

    def get(self, path: str, size: int, mtime_ns: int) -> str | None:
        with self._lock:
            item = self._items.get(path)
        if item and item[0] == _Stamp(size, mtime_ns):
            return item[1]
        return None

    def put(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        with self._lock:
            self._items[path] = (_Stamp(size, mtime_ns), sha256)
            self._dirty = True

    def get_scan(self, path: str, size: int, mtime_ns: int) -> dict | None:
        with self._lock:
            item = self._scans.get(path)
        if item and item[0] == _Stamp(size, mtime_ns):
            return item[1]
        return None

    def put_scan(self, path: str, size: int, mtime_ns: int, scan: dict) -> None:
        with self._lock:
            self._scans[path] = (_Stamp(size, mtime_ns), scan)
            self._dirty = True

    def compute(self, path: str, size: int, mtime_ns: int) -> str:
        cached = self.get(path, size, mtime_ns)
        if cached is not None:
            return cached
        value = sha256_file(path)
        self.put(path, size, mtime_ns, value)
        return value

    def save(self) -> None:
        """Write atomically (temp file + rename); a failure only costs re-hashing next time."""
        if self.path is None:
            return
        with self._lock:
            if not self._dirty:
                return
            files: dict[str, dict] = {}
            for key, (stamp, value) in self._items.items():
                files[key] = {"size": stamp.size, "mtime_ns": stamp.mtime_ns, "sha256": value}
            for key, (stamp, scan) in self._scans.items():
                item = files.setdefault(key, {"size": stamp.size, "mtime_ns": stamp.mtime_ns})
                if (item["size"], item["mtime_ns"]) == (stamp.size, stamp.mtime_ns):
                    item["scan"] = scan
            self._dirty = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".hashes-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"version": 2, "files": files}, handle)
            os.replace(tmp, self.path)
        except OSError as e:
            logger.warning("Could not write hash cache %s: %s", self.path, e)
