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
from typing import Any

from .bulk import gc_paused

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
        self._items: dict[str, tuple[_Stamp, dict[str, Any]]] = {}
        """path -> (stamp, {"sha256": str, "scan": dict}); a new stamp starts a fresh record."""
        self._dirty = False
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        try:
            with gc_paused():
                self._read_document()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            logger.warning("Ignoring unreadable hash cache %s (%s)", self.path, e)

    def _read_document(self) -> None:
        document = json.loads(self.path.read_text(encoding="utf-8"))
        for key, item in document.get("files", {}).items():
            fields = {name: item[name] for name in ("sha256", "scan") if item.get(name)}
            self._items[key] = (_Stamp(int(item["size"]), int(item["mtime_ns"])), fields)

    def _get(self, path: str, size: int, mtime_ns: int, name: str) -> Any:
        with self._lock:
            item = self._items.get(path)
        if item and item[0] == _Stamp(size, mtime_ns):
            return item[1].get(name)
        return None

    def _put(self, path: str, size: int, mtime_ns: int, name: str, value: Any) -> None:
        stamp = _Stamp(size, mtime_ns)
        with self._lock:
            item = self._items.get(path)
            fields = dict(item[1]) if item and item[0] == stamp else {}
            fields[name] = value
            self._items[path] = (stamp, fields)
            self._dirty = True

    def get(self, path: str, size: int, mtime_ns: int) -> str | None:
        value = self._get(path, size, mtime_ns, "sha256")
        return str(value) if value else None

    def put(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        self._put(path, size, mtime_ns, "sha256", sha256)

    def get_scan(self, path: str, size: int, mtime_ns: int) -> dict | None:
        value = self._get(path, size, mtime_ns, "scan")
        return value if isinstance(value, dict) else None

    def put_scan(self, path: str, size: int, mtime_ns: int, scan: dict) -> None:
        self._put(path, size, mtime_ns, "scan", scan)

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
            files = {key: {"size": stamp.size, "mtime_ns": stamp.mtime_ns, **fields}
                     for key, (stamp, fields) in self._items.items()}
            self._dirty = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".hashes-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"version": 2, "files": files}, handle)
            os.replace(tmp, self.path)
        except OSError as e:
            logger.warning("Could not write hash cache %s: %s", self.path, e)
