"""Walking embedding folders: sub-folders, links that stay inside followed once, loops detected, sidecars paired.

Links follow the rule of ``containment``: one whose real target stays inside the embeddings folder is followed;
one leading outside (or into /proc, /sys, /dev) is not: a sub-folder link is a ``Skipped`` problem, an embedding
file link an entry that is never read (``FoundFile.refused``). Each folder is opened once through
``Root.open`` and listed from that descriptor, so a folder swapped for a link after its check is not walked.
A scan stops, with one ``Skipped`` saying so, after ``MAX_FOLDERS`` folders or ``MAX_NAMES`` names.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..formats import decoding as formats
from ..formats.logs import get_logger
from ..records import Sidecars
from . import sidecars
from .containment import FOLDER_FDS, SYSTEM_REASON, OutsideError, Root, in_system_folder

logger = get_logger(__name__)

MAX_FOLDERS = 20_000
"""Folders walked per scan (all embeddings folders together); a real library has dozens."""
MAX_NAMES = 1_000_000
"""Names listed per scan: a 100,000-embedding library with a preview, a text and a JSON each has 400,000."""
_LIST_BY_FD = FOLDER_FDS and os.scandir in os.supports_fd


@dataclass
class FoundFile:
    path: str
    root: str
    folder: str
    name: str
    format: str
    size: int
    mtime_ns: int
    sidecars: Sidecars
    ctime_ns: int = 0
    inode: int = 0
    refused: str = ""
    """Why this file is not read at all (a link leading outside its embeddings folder); empty when it is."""
    within: Root | None = None
    """The embeddings folder it was found in, as this scan resolved it (reads check against it)."""

    @property
    def stamp(self) -> tuple[int, int, int, int]:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode)


@dataclass(frozen=True)
class Skipped:
    """A sub-folder (or the rest of a scan) not walked, and why: shown with the problems."""

    path: str
    root: str
    relpath: str
    reason: str


@dataclass
class ScanReport:
    """What a library refresh found changed (``Library.refresh``)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    loops: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    """Sub-folders not walked (links leading outside, scan caps): listed with the problems."""
    sidecars_changed: bool = False
    skipped_changed: bool = False

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.sidecars_changed or self.skipped_changed)


@dataclass
class Walk:
    found: list[FoundFile] = field(default_factory=list)
    stamps: dict[str, int] = field(default_factory=dict)
    """Each walked folder's mtime_ns."""
    loops: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    folders_left: int = 0
    names_left: int = 0
    stopped: bool = False

    def stop(self, folder: str, root: str, rel: str) -> None:
        """A cap was reached at ``folder``: say so once; nothing more is walked."""
        reason = (f"not scanned: a scan stops after {MAX_FOLDERS:,} folders or {MAX_NAMES:,} names "
                  "(is a folder link leading somewhere huge?)")
        self.skipped.append(Skipped(folder, root, rel, reason))
        logger.warning("Scan of %s stopped at %s: %s", root, folder, reason)
        self.stopped = True


def walk_folders(roots: Sequence[str]) -> Walk:
    """Every candidate embedding file under ``roots``, each folder's mtime_ns, loops and refused folders.

    A folder reached twice (a symlink loop, or two links to one place) is listed once. Pictures named like a
    sibling embedding (``x.png`` beside ``x.pt``) and ``*.preview.*`` pictures are previews, not embeddings.
    """
    walk = Walk(folders_left=MAX_FOLDERS, names_left=MAX_NAMES)
    seen: set[tuple[int, int]] = set()
    for root in roots:
        place = Root.scanned(root)
        if in_system_folder(place.real):
            walk.skipped.append(Skipped(root, root, "", SYSTEM_REASON))
            continue
        stack = [(place.path, "")]
        while stack and not walk.stopped:
            folder, rel = stack.pop()
            if walk.folders_left <= 0:
                walk.stop(folder, place.path, rel)
                break
            walk.folders_left -= 1
            _walk_one(walk, seen, place, folder, rel, stack)
    return walk


def _walk_one(walk: Walk, seen: set, place: Root, folder: str, rel: str, stack: list) -> None:
    try:
        with _opened_folder(place, folder) as (fd, info):
            key = (info.st_dev, info.st_ino)
            if key in seen:
                walk.loops.append(folder)
                logger.info("Skipping %s: folder already scanned (symlink loop or second link)", folder)
                return
            seen.add(key)
            walk.stamps[folder] = info.st_mtime_ns
            with os.scandir(fd if fd is not None else folder) as listing:
                items = list(itertools.islice(listing, walk.names_left + 1))
            if len(items) > walk.names_left:  # the rest of this folder (and of the scan) is not listed
                del items[walk.names_left:]
                walk.stop(folder, place.path, rel)
            walk.names_left -= len(items)
            walk.found.extend(_files_in(walk, place, folder, rel, items, stack))
    except OutsideError as e:
        walk.skipped.append(Skipped(folder, place.path, rel, e.reason))
        logger.warning("Not scanning %s: %s", folder, e.reason)
    except OSError as e:
        if folder != place.path or os.path.exists(place.path):
            logger.warning("Cannot read folder %s: %s", folder, e.strerror or e)


@contextlib.contextmanager
def _opened_folder(place: Root, folder: str) -> Iterator[tuple[int | None, os.stat_result]]:
    """The folder's descriptor (None where folders cannot be listed by descriptor) and its stat.

    The listing's entries stat through the descriptor, so everything about them is read while it is open."""
    if not _LIST_BY_FD:
        place.resolve(folder)
        yield None, os.stat(folder)
        return
    fd = place.open(folder, folder=True)
    try:
        yield fd, os.fstat(fd)
    finally:
        os.close(fd)


def _files_in(walk: Walk, place: Root, folder: str, rel: str, items: list[os.DirEntry],
              stack: list) -> list[FoundFile]:
    names_lower = {item.name.lower(): item.name for item in items}
    kinds = {item.name: formats.format_of(item.name) for item in items}
    tensor_stems = {name.rsplit(".", 1)[0].lower() for name, kind in kinds.items()
                    if kind in ("pickle", "safetensors")}
    out: list[FoundFile] = []
    for item in sorted(items, key=lambda i: i.name):
        path, kind = os.path.join(folder, item.name), kinds[item.name]
        try:
            refused = place.refusal(path) if item.is_symlink() else None
            if item.is_dir():
                child = f"{rel}/{item.name}" if rel else item.name
                if refused:
                    walk.skipped.append(Skipped(path, place.path, child, refused))
                    logger.warning("Not scanning %s: %s", path, refused)
                else:
                    stack.append((path, child))
                continue
            if kind is None or not (refused or item.is_file()):
                continue
            stem = item.name.rsplit(".", 1)[0]
            if kind == "image" and (sidecars.is_preview_name(item.name) or stem.lower() in tensor_stems
                                    or sidecars.is_civitai_image(item.name, tensor_stems, names_lower)):
                continue
            info = item.stat(follow_symlinks=not refused)
        except OSError as e:  # vanished or unreadable while we looked: it is simply not there
            logger.info("Skipping %s: %s", path, e.strerror or e)
            continue
        own_image = item.name if kind == "image" else None
        out.append(FoundFile(path, place.path, rel, item.name, kind, 0 if refused else info.st_size,
                             info.st_mtime_ns, sidecars.find_sidecars(stem, names_lower, own_image),
                             info.st_ctime_ns, info.st_ino, refused or "", place))
    return out


@dataclass
class PartialWalk:
    found: list[FoundFile]
    stamps: dict[str, int]
    """mtime_ns of every folder listed again (changed ones and new sub-folders)."""
    gone: set[str]
    """Known folders that no longer exist (with everything below them)."""


def walk_changed(folders: Sequence[str], known: dict[str, int], roots: Sequence[str]) -> PartialWalk | None:
    """List again only ``folders`` (those a watcher saw change) and sub-folders that are new in them; known
    sub-folders are left alone (a change inside one is an event of its own). None when a full walk is needed: a
    folder outside the roots or unknown with an unknown parent, a symlinked folder in a listing (loops and second
    links are told apart only by a full walk), a refused folder or a cap reached (the full walk reports those)."""
    walk = Walk(folders_left=MAX_FOLDERS, names_left=MAX_NAMES)
    gone: set[str] = set()
    seen: set[tuple[int, int]] = set()
    known_children: dict[str, list[str]] = {}  # one pass over the known folders, however many folders changed
    for known_folder in known:
        known_children.setdefault(os.path.dirname(known_folder), []).append(known_folder)
    for start in folders:
        root = next((r for r in roots if start == r or start.startswith(r.rstrip(os.sep) + os.sep)), None)
        if root is None or (start not in known and os.path.dirname(start) not in known):
            return None
        place = Root.scanned(root)
        stack = [(start, os.path.relpath(start, root).replace(os.sep, "/") if start != root else "")]
        while stack:
            folder, rel = stack.pop()
            if folder in walk.stamps:
                continue
            if not os.path.isdir(folder):
                gone.add(folder)
                continue
            children: list[tuple[str, str]] = []
            _walk_one(walk, seen, place, folder, rel, children)
            if walk.stopped or walk.skipped or walk.loops or any(os.path.islink(path) for path, _ in children):
                return None
            present = {path for path, _ in children}
            gone.update(k for k in known_children.get(folder, ()) if k not in present)
            stack.extend(item for item in children if item[0] not in known)
    return PartialWalk(walk.found, walk.stamps, gone)


def keep_unchanged(changed: Sequence[str], known: dict[str, int], records: dict[str, Any],
                   roots: Sequence[str]) -> tuple[list[FoundFile], dict[str, int], dict[str, Any]] | None:
    """For a refresh of ``changed`` folders only: ``(files found there, every folder's stamp, the records of files
    elsewhere, kept without a stat)``; None when a full walk is needed (``walk_changed``)."""
    partial = walk_changed(changed, known, roots)
    if partial is None:
        return None
    gone = tuple(folder + os.sep for folder in partial.gone)
    stamps = {folder: stamp for folder, stamp in known.items()
              if folder not in partial.gone and not folder.startswith(gone)}
    stamps.update(partial.stamps)
    kept = {path: record for path, record in records.items()
            if (folder := path[:path.rfind(os.sep)]) not in partial.stamps and folder in stamps}
    return partial.found, stamps, kept
