"""Containment: everything we open, read or write under an embeddings folder stays inside that folder.

The rule for links (the WebUI follows every link, and archives, ``git`` and ``7z`` all deliver links):

- the embeddings folder itself may be a link; its *real* path (links resolved) is the reference;
- a link inside it (to a file or a folder) is followed when its real target lies inside that real path;
- a link whose target lies outside is not followed, not read and not written through: an embedding file or
  sub-folder reached through it is listed as a problem with ``LINK_OUT`` as its reason;
- ``/proc``, ``/sys`` and ``/dev`` are never read, whatever the folder says.

A file is opened once, by ``Root.open``: without following a final link (``O_NOFOLLOW``; a link is resolved
first and its real target checked), without blocking or taking the terminal (``O_NONBLOCK``, ``O_NOCTTY``), and
``fstat`` must call it a regular file (or, for ``folder=True``, a folder). Where the system can name the file an
open descriptor refers to (Linux: ``/proc/self/fd``), that real path is checked again, so a folder swapped for a
link between a check and the open is caught on the file actually opened; elsewhere the resolved path must be the
very file opened (same device and inode). Every read then comes from that descriptor.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from ..errors import CorruptFileError, EmbeddingError, UnsupportedFileError
from ..formats import decoding as formats
from ..records import Header

T = TypeVar("T")

SYSTEM_FOLDERS = ("/proc", "/sys", "/dev") if os.name == "posix" else ()
"""Never read: their "files" are the process's environment, kernel state and devices, not embeddings."""
LINK_OUT = ("a link leading outside the embeddings folder: not followed (move or copy it into the folder, "
            "or add its folder to the embeddings folders)")
SYSTEM_REASON = "inside a system folder (/proc, /sys or /dev): never read"
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FD_NAMES = "/proc/self/fd"
FOLDER_FDS = os.name == "posix"
"""Folders can be opened (and listed) by descriptor here; elsewhere (Windows) they are checked by real path."""
_KNOWN: dict[str, Root] = {}
"""Embeddings folder (absolute, as configured) -> its ``Root`` as last resolved."""


class OutsideError(OSError):
    """A path we do not open: it leads outside its embeddings folder, or into a system folder.

    An ``OSError`` (``EACCES``), so every reader that already treats an unreadable file as such does here too;
    ``reason`` is one line, safe to show."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(errno.EACCES, reason, path)
        self.reason = reason


def in_system_folder(real: str) -> bool:
    return any(real == top or real.startswith(top + "/") for top in SYSTEM_FOLDERS)


def is_within(real_root: str, real: str) -> bool:
    """Is ``real`` (a real path) ``real_root`` itself or below it, and outside the system folders?"""
    if in_system_folder(real):
        return False
    base, path = os.path.normcase(real_root), os.path.normcase(real)
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class Root:
    """An embeddings folder as configured (``path``) and its real path (``real``), taken when this was made.

    Scans make one per folder and pass it along; a single read or write makes a fresh one (``Root.of``)."""

    path: str
    real: str

    @classmethod
    def of(cls, path: str | os.PathLike) -> Root:
        """The folder's real path, resolved now."""
        path = os.path.abspath(os.fspath(path))
        return cls(path, os.path.realpath(path))

    @classmethod
    def scanned(cls, path: str | os.PathLike) -> Root:
        """``of``, remembered for ``known``: each scan resolves its embeddings folders this way."""
        root = cls.of(path)
        _KNOWN[root.path] = root
        return root

    @classmethod
    def known(cls, path: str | os.PathLike) -> Root:
        """As resolved by the last scan (or now, if none did): a read between scans costs no ``realpath``. A
        folder re-linked since then only makes reads refused until the next scan resolves it again."""
        found = _KNOWN.get(os.fspath(path))
        return found if found is not None else cls.of(path)

    def holds(self, real: str) -> bool:
        return is_within(self.real, real)

    def refusal(self, path: str) -> str | None:
        """Why ``path`` (a link, or reached through one) must not be followed; None when it stays inside."""
        real = os.path.realpath(path)
        if in_system_folder(real):
            return SYSTEM_REASON
        return None if self.holds(real) else LINK_OUT

    def resolve(self, path: str) -> str:
        """The real path of ``path``; ``OutsideError`` when that lies outside this folder."""
        real = os.path.realpath(path)
        if not self.holds(real):
            raise OutsideError(path, SYSTEM_REASON if in_system_folder(real) else LINK_OUT)
        return real

    def open(self, path: str, folder: bool = False) -> int:
        """A read-only descriptor of ``path``: a regular file (``folder``: a folder) inside this folder.

        Raises ``OutsideError`` for a path leading outside, ``OSError`` (``EINVAL``) for a FIFO, device, socket or
        anything but what was asked for, and the system's ``OSError`` when it is missing or unreadable."""
        flags = _OPEN_FLAGS | _NOFOLLOW | (getattr(os, "O_DIRECTORY", 0) if folder else 0)
        target = path
        try:
            fd = os.open(target, flags)
        except OSError as e:  # a final link: ELOOP (EMLINK on BSD; ENOTDIR with O_DIRECTORY on Linux)
            if e.errno not in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR) or not _NOFOLLOW or not os.path.islink(path):
                raise
            target = self.resolve(path)  # the final part is a link: open its target, once checked
            fd = os.open(target, flags)
        try:
            self._check_open(fd, path, target, folder)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _check_open(self, fd: int, path: str, opened: str, folder: bool) -> None:
        info = os.fstat(fd)
        if not (stat.S_ISDIR(info.st_mode) if folder else stat.S_ISREG(info.st_mode)):
            raise OSError(errno.EINVAL, "not a folder" if folder else "not a regular file", path)
        real = _open_path(fd)
        if real is None:  # no /proc: the resolved path must name the very file that was opened
            real = os.path.realpath(opened)
            if not _same_file(real, info):
                raise OutsideError(path, "changed while it was being opened; not read")
        if not self.holds(real):
            raise OutsideError(path, SYSTEM_REASON if in_system_folder(real) else LINK_OUT)

    def reader(self, path: str) -> BinaryIO:
        """``open`` as a binary file object (use it in a ``with`` block)."""
        return os.fdopen(self.open(path), "rb")

    def read(self, path: str, limit: int) -> bytes:
        """Up to ``limit + 1`` bytes of a regular file inside this folder (one more tells a caller it is over)."""
        with self.reader(path) as handle:
            return handle.read(limit + 1)

    def check_folder(self, folder: str) -> None:
        """A folder we are about to write into must really be inside (``OutsideError`` otherwise)."""
        if not FOLDER_FDS:
            self.resolve(folder)
            return
        os.close(self.open(folder, folder=True))

    def check_written(self, fd: int, path: str) -> None:
        """A file we just created (a temporary file) must really be inside: checked on its descriptor."""
        self._check_open(fd, path, path, folder=False)


def _open_path(fd: int) -> str | None:
    """The real path of an open descriptor, where the system says it (Linux); None elsewhere."""
    try:
        real = os.readlink(f"{_FD_NAMES}/{fd}")
    except OSError:
        return None
    return real[: -len(" (deleted)")] if real.endswith(" (deleted)") else real


def _same_file(path: str, info: os.stat_result) -> bool:
    try:
        now = os.stat(path)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino)


def read_embedding(root: Root, path: str) -> bytes:
    """The whole of an embedding file under ``root``, read from the one descriptor ``Root.open`` checked.
    Raises ``EmbeddingError`` only (a link out: ``unsupported`` with ``LINK_OUT``)."""
    return _through_reader(root, path, formats.read_open)


def scan_embedding(root: Root, path: str) -> Header:
    """``formats.scan_open`` of an embedding file under ``root`` (header only, one descriptor)."""
    return _through_reader(root, path, formats.scan_open)


def _through_reader(root: Root, path: str, read: Callable[[BinaryIO, str], T]) -> T:
    try:
        with root.reader(path) as handle:
            return read(handle, path)
    except OSError as e:
        raise unreadable(path, e) from e


def unreadable(path: str, error: OSError) -> EmbeddingError:
    if isinstance(error, OutsideError):
        return UnsupportedFileError(path, error.reason)
    return CorruptFileError(path, f"cannot read the file ({error.strerror or type(error).__name__})")
