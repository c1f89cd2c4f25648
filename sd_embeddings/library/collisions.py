"""Keywords, compatibility with the active model, and the rule for files that share a keyword.

Collision rule (documented in the README): among files with the same keyword (compared as the tokenizer reads
them, ``clip_text.keyword_key``: ``bad -hands-5`` is ``bad-hands-5``), a file whose own name (stem) is the keyword
always beats one that only claims it from inside (a picture's stored embedding name): a name written into a
stranger's file never takes a keyword from a file named so, whatever the folders or models; such a claimant is
always ``duplicate``, its reason naming the winner. Then the one usable
with the active model wins; then the one in the shallower folder; then the one in the earlier scanned folder;
then the alphabetically first relative path. The others are reported as ``duplicate``; a file for another model
family keeps its ``incompatible`` status (it is used when that model is loaded).
"""

from __future__ import annotations

import collections
import dataclasses
import operator
import os
from collections.abc import Iterable, Sequence

from ..records import Entry, Family, Status
from .clip_text import keyword_key

__all__ = ["claims_name", "compatibility", "keyword_key", "listing_order", "public", "resolve", "settle"]

_WIDTH_NAMES = {Family.SD1: "768", Family.SD2: "1024", Family.SDXL: "768+1280"}


def compatibility(entry: Entry, family: Family | None) -> tuple[bool, str]:
    """Whether a decodable entry works with the active model, and if not, a one-line reason."""
    own = entry.family
    if own is Family.UNKNOWN:
        return False, f"vector width {entry.header.shape.describe() if entry.header else '?'} matches no " \
                      "known model (SD1.5 768, SD2 1024, SDXL 768+1280)"
    if family is None or own is family:
        return True, ""
    return False, f"{own.long_label} embedding ({_WIDTH_NAMES[own]}), model is {family.long_label}"


def resolve(records: Iterable[Entry], family: Family | None,
            folders: Sequence[str]) -> tuple[tuple[Entry, ...], dict[str, Entry]]:
    """Public entries (fresh copies of the file records) with statuses applied, and the winner per keyword."""
    entries: list[Entry] = []
    groups: dict[str, list[Entry]] = collections.defaultdict(list)
    for record in records:
        entry = public(record, family)
        if record.file_status is Status.LOADED:
            groups[keyword_key(entry.keyword)].append(entry)
        entries.append(entry)
    root_order = {root: i for i, root in enumerate(folders)}
    winners = {key: settle(group, root_order) for key, group in groups.items()}
    entries.sort(key=listing_order)
    return tuple(entries), winners


def public(record: Entry, family: Family | None) -> Entry:
    """A fresh public entry of a file record, with its compatibility with ``family`` applied."""
    entry = _copy(record)
    if record.file_status is Status.LOADED:
        ok, reason = compatibility(record, family)
        entry.status, entry.reason = (Status.LOADED, "") if ok else (Status.INCOMPATIBLE, reason)
    return entry


def settle(group: list[Entry], root_order: dict[str, int]) -> Entry:
    """Apply the collision rule to the public entries sharing one keyword; returns the winner."""
    if len(group) == 1:  # the common case: nothing to compare (the sort key reads paths, 10,000 times)
        return group[0]
    group.sort(key=lambda e: (claims_name(e), e.status is not Status.LOADED, e.folder.count("/") + bool(e.folder),
                              root_order.get(e.root, 0), e.relpath.casefold(), e.relpath))
    winner = group[0]
    winner.collides_with = [loser.path for loser in group[1:]]  # public entries are fresh: nothing to keep
    for loser in group[1:]:
        loser.collides_with = [winner.path]
        if loser.status is winner.status or claims_name(loser) > claims_name(winner):
            why = _why(winner, loser)
            loser.status = Status.DUPLICATE
            loser.reason = f"same keyword as {_shown(winner)}, which is used instead ({why})"
    return winner


def listing_order(entry: Entry) -> tuple[str, str]:
    """How ``Library.entries`` is sorted: by keyword (case-insensitive), then path."""
    return entry.keyword.casefold(), entry.relpath


def claims_name(entry: Entry) -> bool:
    """Does the keyword come from inside the file (a stored name) rather than from the file's own name?"""
    keyword, path = entry.keyword, entry.path
    rest = path[path.rfind(os.sep) + 1 + len(keyword):]
    if path.endswith(keyword, 0, len(path) - len(rest)) and (not rest or rest[0] == "." and "." not in rest[1:]):
        return False  # the file's own stem (the common case, asked for every entry on every rebuild)
    stem = os.path.splitext(os.path.basename(path))[0]
    return keyword_key(keyword) != keyword_key(stem)


_FIELDS = operator.attrgetter(*(item.name for item in dataclasses.fields(Entry)))
_COLLIDES = [item.name for item in dataclasses.fields(Entry)].index("collides_with")


def _copy(record: Entry) -> Entry:
    """A fresh public entry from a file record: every field read at C speed, then one positional ``__init__``
    (cheaper than dataclasses.replace on every rescan), colliding with nothing until ``settle`` says so."""
    values = list(_FIELDS(record))
    values[_COLLIDES] = ()
    return Entry(*values)


def _shown(entry: Entry) -> str:
    return entry.relpath if not entry.root else os.path.join(os.path.basename(entry.root), entry.relpath)


def _why(winner: Entry, loser: Entry) -> str:
    if claims_name(loser) > claims_name(winner):
        return "a file named after the keyword beats a name stored inside another file"
    depth = (winner.folder.count("/") + bool(winner.folder), loser.folder.count("/") + bool(loser.folder))
    if depth[0] != depth[1]:
        return "shallower folder"
    if winner.root != loser.root:
        return "earlier embeddings folder"
    return "alphabetical order of paths"
