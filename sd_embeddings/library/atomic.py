"""The one way this project writes a file: whole or not at all, durable, with the permissions users expect.

``write_atomic(path, data)``: the bytes go to ``.sdemb-XXXXXXXX.tmp`` in the same folder, are flushed and
fsync'd, get their final permissions (an existing file keeps its own; a new file follows the umask, like
``open()``), then replace ``path`` in one ``os.replace`` (a link at ``path`` is replaced, never written through).
A failure leaves ``path`` as it was, removes the temporary file and raises ``WriteError`` saying what happened.

A process killed between the two steps leaves its temporary file behind: ``remove_stale_temps`` deletes ours
(exact name pattern, plain files) once they are old enough that no live writer can still own them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
import threading
import time

from ..errors import WriteError
from ..formats.logs import get_logger
from .containment import OutsideError, Root

logger = get_logger(__name__)

TEMP_PREFIX, TEMP_SUFFIX = ".sdemb-", ".tmp"
_TEMP_NAME = re.compile(r"\.sdemb-[a-z0-9_]{8}\.tmp")
"""Exactly what ``tempfile.mkstemp`` makes with our prefix and suffix: nothing a user named is ever matched."""
STALE_AFTER_S = 15 * 60
"""A write takes well under a second; a temporary file this old belongs to a writer that died."""
_KINDS = {errno.EROFS: ("read-only", "folder is read-only"),
          errno.EACCES: ("read-only", "folder is read-only (no permission to write there)"),
          errno.EPERM: ("read-only", "folder is read-only (no permission to write there)"),
          errno.ENOSPC: ("disk-full", "disk full (no space left on the device)"),
          errno.EDQUOT: ("disk-full", "disk full (disk quota exceeded)"),
          errno.ENAMETOOLONG: ("name-too-long", "name too long for the file system"),
          errno.EISDIR: ("not-a-file", "a folder of that name is in the way")}
_umask_lock = threading.Lock()


def write_atomic(path: str | os.PathLike, data: bytes, within: Root | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably. Raises ``WriteError``.

    ``within``: the embeddings folder the file must land in. Its folder is checked before writing and the
    temporary file on its descriptor once created (a folder linked outside: ``WriteError`` "outside")."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    try:
        if within is not None:
            within.check_folder(folder)
        mode = _mode_for(path)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    except OSError as e:
        raise _write_error(path, e) from e
    try:
        with os.fdopen(fd, "wb") as handle:
            if within is not None:
                within.check_written(handle.fileno(), tmp)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _write_error(path, e) from e
        raise
    _sync_folder(folder)


def _mode_for(path: str) -> int:
    """An existing plain file keeps its permission bits; anything new gets 0666 less the umask."""
    with contextlib.suppress(OSError):
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode):
            return stat.S_IMODE(info.st_mode)
    return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux), else set and restored."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable (best effort: not every system can open a folder)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_error(path: str, error: OSError) -> WriteError:
    if isinstance(error, OutsideError):
        return WriteError(path, "outside", f"not written: {error.reason}")
    kind, what = _KINDS.get(error.errno or 0, ("failed", f"could not write ({error.strerror or error})"))
    return WriteError(path, kind, what, error.errno)


def remove_stale_temps(folder: str | os.PathLike, now: float | None = None) -> list[str]:
    """Delete our temporary files older than ``STALE_AFTER_S`` in ``folder``; returns the paths removed."""
    removed: list[str] = []
    limit = (time.time() if now is None else now) - STALE_AFTER_S
    try:
        with os.scandir(folder) as listing:
            candidates = [item for item in listing if _TEMP_NAME.fullmatch(item.name)]
    except OSError:
        return removed
    for item in candidates:
        with contextlib.suppress(OSError):
            info = item.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < limit:
                os.unlink(item.path)
                removed.append(item.path)
    if removed:
        logger.info("Removed %d unfinished temporary file(s) left in %s by an interrupted write",
                    len(removed), os.fspath(folder))
    return removed
