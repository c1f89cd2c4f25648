"""The cards document at scale: built once per library state, shared by concurrent requests, sent in pages.

``GET /cards?page=N&build=B`` (``routes.py``) is ``answer(library, page, build, auto_negative, gzip_ok)``:

- page 0: ``{version, build, page: 0, pages, total, family, roots, folders, problems, groups, fields, strings,
  cards}``: the head of the document (``folders``: every sub-folder, ``""`` first, which rows point into;
  ``problems``: ``cards.problem_rows``; ``groups``: ``groups.groups_payload``, read per request as ``GET /groups``
  does) and the first ``PAGE`` cards as compact rows (``card_rows``), in the library's order;
- page N > 0: ``{version, build, page, pages, fields, strings, cards}``: the next ``PAGE`` rows of build ``B`` (the
  one page 0 named). A build no longer held (``KEEP`` per library) answers 409 and the script starts again.

A build (``Snapshot``) is one state of the library: its version, the hashes and vector fingerprints known
(``library.facts``: they fill in without a new version; while a background pass runs they wait for its end), the
tab's own writes (``changed``: metadata, previews, Refresh) and the negative-name setting. Each page is built on
its first request and kept, once per build however many requests ask at the same time, as JSON text and, for
clients that accept it, gzip. ``WORK`` counts builds and rows written, so tests count work, never time.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from ..library import Library
from ..library.bulk import gc_paused
from ..records import Entry
from . import card_rows, cards
from .names import shown

PAGE = 5_000
"""Card rows per page of ``/cards``."""
KEEP = 2
"""Builds held per library, so a client still fetching an older build's pages can finish."""
GZIP_LEVEL = 5


@dataclass
class Work:
    builds: int = 0
    rows: int = 0


WORK = Work()
"""What was built since the process started (tests compare it before and after)."""


@dataclass
class Answer:
    status: int
    body: bytes
    gzipped: bool = False


@dataclass
class _Page:
    rows: str
    """``{"fields", "strings", "cards"}`` as JSON text."""
    whole: bytes = b""
    zipped: bytes = b""


@dataclass
class Snapshot:
    build: int
    token: tuple
    auto_negative: bool
    family: str
    entries: tuple[Entry, ...]
    """The cards, in the library's order."""
    folders: list[str]
    problems: list[dict]
    twins: dict[str, list[Entry]]
    lock: threading.Lock = field(default_factory=threading.Lock)
    pages: dict[tuple[int, int], _Page] = field(default_factory=dict)
    heads: dict[int, str] = field(default_factory=dict)
    firsts: dict[tuple, dict] = field(default_factory=dict)
    """First screens (``first_page``) by their options."""

    def pages_for(self, size: int) -> int:
        return max(1, math.ceil(len(self.entries) / size))


class _Held:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.snapshots: list[Snapshot] = []
        self.edits = 0


_HELD: weakref.WeakKeyDictionary[Library, _Held] = weakref.WeakKeyDictionary()
_HELD_LOCK = threading.Lock()
_BUILDS = itertools.count(1)


def _held(library: Library) -> _Held:
    with _HELD_LOCK:
        held = _HELD.get(library)
        if held is None:
            held = _HELD[library] = _Held()
        return held


def changed(library: Library) -> None:
    """The tab wrote what the library's version does not count (an ``x.json``, a preview picture) or the user
    pressed Refresh (sidecars edited by hand): the next request builds anew."""
    held = _held(library)
    with held.lock:
        held.edits += 1


def to_json(document: Any) -> str:
    """As ``SafeJSONResponse`` writes it: compact, non-ASCII kept, undecodable names shown with U+FFFD."""
    return shown(json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")))


def _busy(library: Library) -> bool:
    """A background pass is hashing and fingerprinting files (each one a new ``library.facts``)."""
    return library.checks.background and not library.checks.idle.is_set()


def snapshot(library: Library, auto_negative: bool = True) -> Snapshot:
    """The build for the library as it is now: an existing one, or a new one (its pages are built on request).

    While a background pass runs, hashes arriving do not make a new build (that would be one per file); the pass's
    end does, once."""
    held = _held(library)
    with held.lock:
        version = library.version  # before the entries: a rescan in between labels new entries old, not the reverse
        facts, entries, busy = library.facts, library.entries, _busy(library)
        key = (version, held.edits, auto_negative)
        for found in reversed(held.snapshots):
            if found.token[:3] == key and (busy or found.token[3] == facts):
                return found
        with gc_paused():  # lists as long as the library: no collector passes over it meanwhile
            made = Snapshot(build=next(_BUILDS), token=(*key, facts), auto_negative=auto_negative,
                            family=library.family.value if library.family else "",
                            entries=tuple(e for e in entries if e.status in cards.CARD_STATUSES),
                            folders=cards.folder_list(library, entries),
                            problems=cards.problem_rows(library, entries), twins=cards.twins_index(library))
        held.snapshots = [*held.snapshots, made][-KEEP:]
        WORK.builds += 1
        return made


def _held_build(library: Library, build: int) -> Snapshot | None:
    held = _held(library)
    with held.lock:
        return next((s for s in held.snapshots if s.build == build), None)


def rows_json(library: Library, snap: Snapshot, entries: tuple[Entry, ...] | list[Entry]) -> str:
    """``{"fields", "strings", "cards"}`` of these entries of the build, as JSON text."""
    writer = card_rows.RowWriter(library, snap.auto_negative, snap.folders, snap.twins)
    with gc_paused():
        rows = [writer.row(entry) for entry in entries]
    WORK.rows += len(rows)
    return to_json({"fields": card_rows.ROW_FIELDS, "strings": writer.strings, "cards": rows})


def _page(library: Library, snap: Snapshot, page: int, size: int) -> _Page:
    with snap.lock:  # concurrent requests for a page wait for the one building it
        found = snap.pages.get((page, size))
        if found is None:
            found = snap.pages[(page, size)] = _Page(
                rows_json(library, snap, snap.entries[page * size:(page + 1) * size]))
        return found


def joined(*parts: str) -> str:
    """JSON objects (as text) merged into one; later keys must not repeat earlier ones."""
    inner = [part[1:-1] for part in parts if part != "{}"]
    return "{" + ",".join(inner) + "}"


def head_json(library: Library, snap: Snapshot, size: int) -> str:
    """Page 0's head without ``groups`` (those are read per request)."""
    with snap.lock:
        found = snap.heads.get(size)
        if found is None:
            found = snap.heads[size] = to_json({
                "version": snap.token[0], "build": snap.build, "page": 0, "pages": snap.pages_for(size),
                "total": len(snap.entries), "family": snap.family, "roots": cards.root_labels(library.folders),
                "folders": snap.folders, "problems": snap.problems})
        return found


def groups_json(library: Library, snap: Snapshot) -> str:
    from .groups import groups_payload  # groups use the cards' rules

    return to_json({"groups": groups_payload(library, snap.auto_negative)})


def _later_page(snap: Snapshot, page: int, size: int, found: _Page, gzip_ok: bool) -> Answer:
    with snap.lock:
        if not found.whole:
            head = to_json({"version": snap.token[0], "build": snap.build, "page": page, "pages": snap.pages_for(size)})
            found.whole = joined(head, found.rows).encode("utf-8")
        if gzip_ok and not found.zipped:
            found.zipped = gzip.compress(found.whole, GZIP_LEVEL, mtime=0)
        return Answer(200, found.zipped, True) if gzip_ok else Answer(200, found.whole)


def _refusal(status: int, detail: str) -> Answer:
    return Answer(status, to_json({"detail": detail}).encode("utf-8"))


def answer(library: Library, page: int = 0, build: int | None = None, auto_negative: bool = True,
           gzip_ok: bool = False, size: int | None = None) -> Answer:
    """The body of ``GET /cards?page=..&build=..`` (see the module docstring); ``size``: rows a page (``PAGE``)."""
    size = size or PAGE
    snap = _held_build(library, build) if page and build is not None else snapshot(library, auto_negative)
    if snap is None:
        return _refusal(409, "the embeddings list changed meanwhile; load it again")
    if not 0 <= page < snap.pages_for(size):
        return _refusal(404, f"no page {page}: the list has {snap.pages_for(size)}")
    found = _page(library, snap, page, size)
    if page:
        return _later_page(snap, page, size, found, gzip_ok)
    body = joined(head_json(library, snap, size), groups_json(library, snap), found.rows).encode("utf-8")
    return Answer(200, gzip.compress(body, GZIP_LEVEL, mtime=0), True) if gzip_ok else Answer(200, body)


def whole_document(library: Library, auto_negative: bool = True) -> dict:
    """Every card in one document (page 0 with a page as long as the list): small libraries, tests."""
    snap = snapshot(library, auto_negative)
    return json.loads(answer(library, 0, None, auto_negative, size=max(PAGE, len(snap.entries))).body)
