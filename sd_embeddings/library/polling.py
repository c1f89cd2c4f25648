"""Noticing changes where inotify cannot see them (NFS, SMB and other network folders) at a bounded cost.

inotify on a network mount reports only what this machine writes; another WebUI or a file manager on another host
changes nothing it sees, and every ``stat`` is a round trip to the server. ``BudgetedPoll.check`` therefore does at
most ``budget`` stats per call (and stops early past ``seconds``): up to half of them on folders, the rest on files,
each list visited round and round from where the last call stopped. A folder's mtime changes when a file is added,
removed or renamed in it, so those changes are found within ``ceil(folders / (budget / 2))`` calls; a file
rewritten in place (its folder's mtime unchanged) within ``ceil(files / (budget - folders share))`` calls (a
Refresh rescans everything at once).

``network_folders`` tells which folders are on such a file system (``/proc/self/mountinfo``, Linux), so the watcher
does not call itself complete for them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..records import stat_stamp

NETWORK_TYPES = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre",
                           "davfs", "fuse.sshfs", "fuse.rclone", "fuse.glusterfs", "fuse.s3fs", "virtiofs"})
"""File systems whose changes made elsewhere never reach this machine's inotify."""
BUDGET = 128
"""Stats per check: on a server answering in 0.5 ms, under 0.1 s added to a generation."""
SECONDS = 0.05
"""And no check goes on past this (a slow server): the rest waits for the next call."""


class BudgetedPoll:
    """Compare folders, then files, with what ``library`` last scanned, ``budget`` stats per ``check``."""

    def __init__(self, budget: int = BUDGET, seconds: float = SECONDS,
                 stat: Callable[[str], os.stat_result] = os.stat) -> None:
        self.budget = max(2, budget)
        self.seconds = seconds
        self.stat = stat
        self._folders = _Ring()
        self._files = _Ring()
        self._version: Any = None

    def check(self, library: Any) -> bool:
        """Did something change among this call's share of folders (up to half the budget, the rest for files)?
        True also for a target that vanished. Folders and files each continue where the last call stopped."""
        if self._version != library.version:
            self._folders.reset(list(library.folder_stamps().items()))
            self._files.reset([(entry.path, entry.stamp) for entry in library.entries])
            self._version = library.version
        deadline = time.monotonic() + self.seconds
        folders = min(len(self._folders), self.budget // 2)
        files = min(len(self._files), self.budget - folders)
        for ring, count in ((self._folders, folders), (self._files, files)):
            for done in range(count):
                path, expected = ring.next()
                if self._differs(path, expected):
                    return True
                if done % 16 == 15 and time.monotonic() > deadline:
                    return False
        return False

    def _differs(self, path: str, expected: Any) -> bool:
        try:
            info = self.stat(path)
        except OSError:
            return True
        return (info.st_mtime_ns if isinstance(expected, int) else stat_stamp(info)) != expected


class _Ring:
    """Targets visited round and round, one ``next()`` at a time."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self.cursor = 0

    def reset(self, items: list[tuple[str, Any]]) -> None:
        self.items, self.cursor = items, 0

    def __len__(self) -> int:
        return len(self.items)

    def next(self) -> tuple[str, Any]:
        item = self.items[self.cursor]
        self.cursor = (self.cursor + 1) % len(self.items)
        return item


def mount_types(mountinfo: str) -> list[tuple[str, str]]:
    """``(mount point, file system type)`` from the text of ``/proc/self/mountinfo``, longest mount point first."""
    mounts = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if "-" not in fields:
            continue
        separator = fields.index("-")
        if len(fields) > separator + 1 and len(fields) > 4:
            point = fields[4].encode().decode("unicode_escape")  # spaces in mount points are written as \040
            mounts.append((point, fields[separator + 1]))
    return sorted(mounts, key=lambda mount: len(mount[0]), reverse=True)


def network_folders(folders: Iterable[str], mountinfo: str | None = None) -> list[str]:
    """The ``folders`` that live on a network file system (empty where mountinfo cannot be read)."""
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
                mountinfo = handle.read()
        except OSError:
            return []
    mounts = mount_types(mountinfo)
    found = []
    for folder in folders:
        real = os.path.realpath(folder)
        for point, kind in mounts:
            if real == point or real.startswith(point.rstrip("/") + "/"):
                if kind in NETWORK_TYPES:
                    found.append(folder)
                break
    return found
