"""Groups on disk for a library: listing (cached by folder and file stamps), saving, deleting, member states.

``groups_of(library)`` looks in every folder the library's last scan walked: one ``stat`` per folder, a listing
only of folders whose mtime moved, one ``stat`` per group file and a read only of changed ones. ``save_group`` and
``delete_group`` change files only through the library's folders (a new group goes to the first one), never
outside; ``member_states`` says for each member whether it is usable now, for another model, broken or missing.
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass, field

from ..formats.logs import get_logger
from ..records import Entry, Status, stat_stamp
from .atomic import write_atomic
from .collisions import keyword_key
from .containment import Root
from .groups import SUFFIX, Group, GroupError, GroupExists, Member, check_name, document, is_group_file, read_group
from .library import Library

logger = get_logger(__name__)


@dataclass
class _Listing:
    """What was found last time: per folder its mtime and group file names, per file its group (with stamp)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    folders: dict[str, tuple[int, tuple[str, ...]]] = field(default_factory=dict)
    files: dict[str, Group] = field(default_factory=dict)


_LISTINGS: weakref.WeakKeyDictionary[Library, _Listing] = weakref.WeakKeyDictionary()


def _root_of(library: Library, folder: str) -> tuple[str, str] | None:
    """``(root, folder relative to it)`` for a scanned folder: the deepest library folder holding it."""
    roots = [root for root in library.folders if folder == root or folder.startswith(root.rstrip(os.sep) + os.sep)]
    if not roots:
        return None
    root = max(roots, key=len)
    rel = os.path.relpath(folder, root)
    return root, "" if rel == "." else rel.replace(os.sep, "/")


def _names_in(listing: _Listing, folder: str) -> tuple[str, ...]:
    try:
        mtime = os.stat(folder).st_mtime_ns
    except OSError:
        return ()
    known = listing.folders.get(folder)
    if known is not None and known[0] == mtime:
        return known[1]
    try:
        with os.scandir(folder) as items:
            names = tuple(sorted(item.name for item in items
                                 if is_group_file(item.name) and item.is_file(follow_symlinks=False)))
    except OSError:
        names = ()
    listing.folders[folder] = (mtime, names)
    return names


def groups_of(library: Library) -> list[Group]:
    """Every group file in the library's folders, sorted by name (case-insensitive), broken ones included."""
    listing = _LISTINGS.setdefault(library, _Listing())
    found: dict[str, Group] = {}
    with listing.lock:
        for folder in library.scanned_folders():
            names = _names_in(listing, folder)
            place = _root_of(library, folder) if names else None  # most folders hold no group: no path work
            for name in names if place else ():
                path = os.path.join(folder, name)
                try:
                    stamp = stat_stamp(os.lstat(path))
                except OSError:
                    continue
                group = listing.files.get(path)
                if group is None or group.stamp != stamp:
                    group = read_group(path, place[0], place[1], stamp)
                    if group.problem:
                        logger.warning("Group %s: %s", path, group.problem)
                found[path] = group
        listing.files = found
    return sorted(found.values(), key=lambda g: (g.name.casefold(), g.relpath))


def _forget(library: Library, folder: str) -> None:
    listing = _LISTINGS.get(library)
    if listing is not None:
        with listing.lock:
            listing.folders.pop(folder, None)


def save_group(library: Library, name: str, description: str, target: str, members: tuple[Member, ...],
               replacing: Group | None = None) -> Group:
    """Write a group (a new one into the first library folder; an edited one where it is, renamed if its name
    changed). Raises ``GroupError`` for a bad or taken name, ``WriteError`` when the folder refuses the file."""
    check_name(name)
    if replacing is not None and replacing.problem:
        raise GroupError(f"{replacing.relpath} could not be read ({replacing.problem}); delete it instead")
    if replacing is None and not library.folders:
        raise GroupError("there is no embeddings folder to save the group in")
    taken = [g for g in groups_of(library) if g.name.casefold() == name.casefold()
             and (replacing is None or g.path != replacing.path)]
    if taken:
        raise GroupExists(f"a group named {taken[0].name!r} exists already ({taken[0].relpath})")
    folder = os.path.dirname(replacing.path) if replacing is not None else library.folders[0]
    path = os.path.join(folder, name + SUFFIX)
    within = Root.known(replacing.root if replacing is not None else library.folders[0])
    write_atomic(path, document(description, target, members), within)  # never through a folder linked out
    if replacing is not None and replacing.path != path and not _same_file(replacing.path, path):
        os.unlink(replacing.path)
    _forget(library, folder)
    saved = next((g for g in groups_of(library) if g.path == path), None)
    if saved is None:  # the folder is not one the library scanned (yet): read it where it is
        saved = read_group(path, folder, "")
    logger.info("Saved group %s (%d members)", path, len(members))
    return saved


def _same_file(a: str, b: str) -> bool:
    """A rename that only changes case on a case-insensitive file system leaves one file: never delete it."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def delete_group(library: Library, group: Group) -> None:
    """Remove a listed group's file (``OSError`` when the folder refuses)."""
    if all(g.path != group.path for g in groups_of(library)):
        raise GroupError("not a group of this library")
    Root.known(group.root).check_folder(os.path.dirname(group.path))  # a folder swapped for a link out: refused
    os.unlink(group.path)
    _forget(library, os.path.dirname(group.path))
    logger.info("Deleted group %s", group.path)


@dataclass(frozen=True)
class MemberState:
    member: Member
    entry: Entry | None
    status: str
    """``loaded``, ``incompatible`` (another model family), ``failed`` (the file is broken) or ``missing``."""
    reason: str


class MemberLookup:
    """Member states against one snapshot of the library (built once for all the groups of a listing)."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self.failed = {keyword_key(e.keyword): e for e in library.entries if e.is_problem}

    def state(self, member: Member) -> MemberState:
        entry = self.library.get(member.keyword)
        if entry is not None:
            status = "loaded" if entry.status is Status.LOADED else "incompatible"
            return MemberState(member, entry, status, entry.reason)
        broken = self.failed.get(keyword_key(member.keyword))
        if broken is not None:
            return MemberState(member, broken, "failed", f"{broken.status.value}: {broken.reason}")
        return MemberState(member, None, "missing", "no embedding has this keyword")
