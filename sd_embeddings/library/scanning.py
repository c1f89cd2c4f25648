"""Walking embedding folders: sub-folders, symlinks followed once, loops detected, sidecars paired up."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..formats import decoding as formats
from ..records import Sidecars
from . import sidecars

logger = logging.getLogger(__name__)


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

    @property
    def stamp(self) -> tuple[int, int, int, int]:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode)


def walk_folders(roots: Sequence[str]) -> tuple[list[FoundFile], dict[str, int], list[str]]:
    """Every candidate embedding file under ``roots``, each folder's mtime_ns, and the symlink loops skipped.

    A folder reached twice (a symlink loop, or two links to one place) is listed once. Pictures named like a
    sibling embedding (``x.png`` beside ``x.pt``) and ``*.preview.*`` pictures are previews, not embeddings.
    """
    found: list[FoundFile] = []
    stamps: dict[str, int] = {}
    loops: list[str] = []
    seen: set[tuple[int, int]] = set()
    for root in roots:
        stack = [(root, "")]
        while stack:
            folder, rel = stack.pop()
            try:
                info = os.stat(folder)
                with os.scandir(folder) as listing:
                    items = list(listing)
            except OSError as e:
                if folder != root or os.path.exists(root):
                    logger.warning("Cannot read folder %s: %s", folder, e.strerror or e)
                continue
            key = (info.st_dev, info.st_ino)
            if key in seen:
                loops.append(folder)
                logger.info("Skipping %s: folder already scanned (symlink loop or second link)", folder)
                continue
            seen.add(key)
            stamps[folder] = info.st_mtime_ns
            found.extend(_files_in(folder, root, rel, items, stack))
    return found, stamps, loops


def _files_in(folder: str, root: str, rel: str, items: list[os.DirEntry], stack: list) -> list[FoundFile]:
    names_lower = {item.name.lower(): item.name for item in items}
    kinds = {item.name: formats.format_of(item.name) for item in items}
    tensor_stems = {name.rsplit(".", 1)[0].lower() for name, kind in kinds.items()
                    if kind in ("pickle", "safetensors")}
    out: list[FoundFile] = []
    for item in sorted(items, key=lambda i: i.name):
        try:
            if item.is_dir():
                stack.append((item.path, f"{rel}/{item.name}" if rel else item.name))
                continue
            kind = kinds[item.name]
            if kind is None or not item.is_file():
                continue
            stem = item.name.rsplit(".", 1)[0]
            if kind == "image" and (sidecars.is_preview_name(item.name) or stem.lower() in tensor_stems):
                continue
            info = item.stat()
        except OSError as e:  # vanished or unreadable while we looked: it is simply not there
            logger.info("Skipping %s: %s", item.path, e.strerror or e)
            continue
        own_image = item.name if kind == "image" else None
        out.append(FoundFile(item.path, root, rel, item.name, kind, info.st_size, info.st_mtime_ns,
                             sidecars.find_sidecars(stem, names_lower, own_image), info.st_ctime_ns, info.st_ino))
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
    folder outside the roots or unknown with an unknown parent, or a symlinked folder in a listing (loops and
    second links are told apart only by a full walk)."""
    walk = PartialWalk([], {}, set())
    for start in folders:
        root = next((r for r in roots if start == r or start.startswith(r.rstrip(os.sep) + os.sep)), None)
        if root is None or (start not in known and os.path.dirname(start) not in known):
            return None
        stack = [(start, os.path.relpath(start, root).replace(os.sep, "/") if start != root else "")]
        while stack:
            folder, rel = stack.pop()
            if folder in walk.stamps:
                continue
            try:
                info = os.stat(folder)
                with os.scandir(folder) as listing:
                    items = list(listing)
            except OSError:
                walk.gone.add(folder)
                continue
            if any(item.is_symlink() and item.is_dir() for item in items):
                return None
            walk.stamps[folder] = info.st_mtime_ns
            subfolders: list[tuple[str, str]] = []
            walk.found.extend(_files_in(folder, root, rel, items, subfolders))
            present = {path for path, _ in subfolders}
            walk.gone.update(k for k in known if os.path.dirname(k) == folder and k not in present)
            stack.extend(item for item in subfolders if item[0] not in known)
    return walk


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
