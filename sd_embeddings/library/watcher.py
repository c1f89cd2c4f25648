"""Noticing changes below the embeddings folders without scanning before every generation.

``ChangeWatcher`` sets a flag from a background thread; the generation path only reads it (``consume()``), so
"nothing changed" costs an ``Event.is_set()`` whatever the number of files.

* On Linux it uses inotify (through ``ctypes``, no dependency): one watch per folder, for files created, written,
  moved, deleted or re-attributed; new sub-folders are watched as soon as they appear. ``complete`` is True while
  every scanned folder is watched, so callers can skip even the per-folder ``stat`` pass.
* Elsewhere (or when inotify is unavailable or out of watches) a polling thread compares folders, then files, with
  the library, ``POLL_BUDGET`` stats every ``interval`` seconds (``polling.BudgetedPoll``); callers then also run
  their own budgeted check per generation. Folders on a network file system (NFS, SMB, ...) make the watcher
  incomplete too: inotify there misses what other machines write.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import sys
import threading
from typing import Any

from ..formats.logs import get_logger
from ..records import stat_stamp
from . import polling

logger = get_logger(__name__)

_IN_MASK = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800  # modify..move_self
_IN_ISDIR, _IN_CREATE, _IN_MOVED_TO, _IN_Q_OVERFLOW, _IN_IGNORED = 0x40000000, 0x100, 0x80, 0x4000, 0x8000
_EVENT = struct.Struct("iIII")
POLL_BUDGET, POLL_SECONDS = 2048, 0.25
"""The polling thread's stats per ``interval`` (and time cap): a 10,000-file library is gone over every 10 s."""


class ChangeWatcher:
    def __init__(self, interval: float = 2.0, use_inotify: bool = True) -> None:
        self.interval = interval
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._library: Any = None
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._libc: Any = None
        self._wds: dict[int, str] = {}
        self._paths: dict[str, int] = {}
        self._failed = False
        self._changed: set[str] | None = set()
        self.remote = False
        """Some folder is on a network file system (see ``polling``)."""
        self._poll = polling.BudgetedPoll(budget=POLL_BUDGET, seconds=POLL_SECONDS)
        if use_inotify and sys.platform.startswith("linux"):
            self._open_inotify()

    @property
    def kind(self) -> str:
        return "inotify" if self._fd is not None else "poll"

    @property
    def complete(self) -> bool:
        """True when every scanned folder has an inotify watch that sees every change (no stat needed): not for
        folders on a network file system, where inotify misses what other machines write."""
        return self._fd is not None and not self._failed and not self.remote and self._thread is not None and \
            self._thread.is_alive()

    def consume(self) -> bool:
        """Was something changed since the last call? Clears the flag.

        With inotify, events the kernel has queued but the thread has not read yet are drained here first (one
        non-blocking ``read``), so a file written just before a generation is never missed.
        """
        if self._fd is not None:
            self._drain()
        if self._dirty.is_set():
            self._dirty.clear()
            return True
        return False

    def take_changed(self) -> set[str] | None:
        """The folders inotify saw change since the last call (then forgotten); None when unknown (a queue
        overflow, or no inotify): rescan everything."""
        with self._lock:
            changed, self._changed = self._changed, set()
        return changed if self._fd is not None else None

    def watch(self, library: Any) -> None:
        """(Re)start watching what ``library`` scanned; call after each refresh. Idempotent."""
        self._library = library
        self.remote = bool(polling.network_folders(library.folders))
        if self._fd is not None:
            with self._lock:
                wanted = set(library.scanned_folders())
                for path in wanted - set(self._paths):
                    self._add_watch(path)
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            target = self._inotify_loop if self._fd is not None else self._poll_loop
            self._thread = threading.Thread(target=target, name="sd-embeddings-watcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._wds.clear()
            self._paths.clear()

    # -- inotify --------------------------------------------------------------------------------------------

    def _open_inotify(self) -> None:
        try:
            self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = self._libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        except (OSError, AttributeError) as e:
            logger.info("inotify unavailable (%s); polling embedding folders instead", e)
            return
        if fd >= 0:
            self._fd = fd

    def _add_watch(self, path: str) -> None:
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), _IN_MASK)
        if wd < 0:
            if not self._failed:
                logger.warning("Cannot watch %s (%s); changes there are picked up by a per-folder check instead",
                               path, os.strerror(ctypes.get_errno()))
            self._failed = True
            return
        self._wds[wd] = path
        self._paths[path] = wd

    def _drain(self) -> None:
        """Read and handle every queued event; reading and handling happen under one lock, so a reader that
        finds the queue empty knows any event read by the other thread has already set the flag."""
        with self._lock:
            try:
                while True:
                    self._handle(os.read(self._fd, 64 * 1024))
            except (BlockingIOError, OSError, TypeError):
                return

    def _inotify_loop(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], 1.0)
            except (OSError, ValueError, TypeError):
                return
            if ready:
                self._drain()

    def _handle(self, data: bytes) -> None:
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size: offset + _EVENT.size + length].split(b"\0", 1)[0]
            offset += _EVENT.size + length
            if mask & _IN_IGNORED:
                path = self._wds.pop(wd, None)
                self._paths.pop(path, None)
                continue
            if mask & _IN_Q_OVERFLOW:
                self._failed = True
                self._changed = None
            elif self._changed is not None:
                self._changed.add(self._wds.get(wd, ""))
            if mask & _IN_ISDIR and mask & (_IN_CREATE | _IN_MOVED_TO) and wd in self._wds:
                self._add_watch(os.path.join(self._wds[wd], os.fsdecode(name)))
            self._dirty.set()

    # -- polling ---------------------------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.interval):
            library = self._library
            if library is not None and self._poll.check(library):
                self._dirty.set()


def any_file_changed(library: Any) -> bool:
    """One ``stat`` per folder and per file: what a scan would find different (added, removed, rewritten)."""
    if library.folders_changed():
        return True
    for entry in library.entries:
        try:
            info = os.stat(entry.path)
        except OSError:
            return True
        if stat_stamp(info) != entry.stamp:
            return True
    return False
