"""``scan DIR...``: list every file with keyword, family, vectors, status and reason.

``--json`` prints a JSON array, one object per file (schema in the README, "CLI"): ``keyword``, ``path`` (relative
to the scanned folder, ``/``-separated), ``root``, ``folder``, ``format``, ``layout``, ``family``
(``sd1``/``sd2``/``sdxl``/``unknown``), ``vectors``, ``width``, ``status``, ``reason``, ``sha256`` (null until
known), ``size``, ``mtime``, ``preview``, ``collides_with``. The summary then goes to stderr. The table is followed
by the groups (``<name>.tigroup.json``): members with weights, and which are missing or unusable.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from ..formats.text import json_text, printable
from ..library import Library, shown
from ..library.group_store import MemberLookup, groups_of
from ..library.hashing import HashCache, default_cache_path
from ..records import Entry, Family, Status
from .arguments import family_arg
from .progress import progress_bar

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scan", help="list the embeddings in folders, with status and reasons",
                                   description="List every embedding file under the folders (sub-folders too).")
    parser.add_argument("folders", nargs="*", default=["embeddings"], metavar="DIR",
                        help="folders to scan (default: embeddings)")
    parser.add_argument("--family", type=family_arg, metavar="sd1|sd2|sdxl",
                        help="active model family: other families are listed as incompatible")
    parser.add_argument("--json", action="store_true", help="print a JSON array (summary on stderr)")
    parser.add_argument("--hashes", action="store_true", help="compute every sha256 now (cached for next time)")
    parser.add_argument("--verify", action="store_true",
                        help="also read every value (NaN/Inf, cut-off data); by default only headers are read")
    parser.set_defaults(func=run)


def open_library(folders: list[str], family: Family | None, verify: bool = True) -> Library | None:
    """``verify`` decodes every value while scanning; without it only headers are read (no torch, ~20x faster)."""
    missing = [folder for folder in folders if not os.path.isdir(folder)]
    if missing:
        print(f"error: not a folder: {', '.join(missing)}", file=sys.stderr)
        return None
    return Library(folders, family=family, hash_cache=HashCache(default_cache_path()), background_hashing=False,
                   deep=verify)


def run(args: argparse.Namespace) -> int:
    library = open_library(args.folders, args.family, verify=args.verify)
    if library is None:
        return 2
    library.refresh(progress=progress_bar("Scanning"))
    for entry in library.entries:  # -v: every file read, good ones too (problems are also logged as warnings)
        logger.info("Read %s: %s%s", entry.path, entry.status.value, f" ({entry.reason})" if entry.reason else "")
    if args.hashes or args.json:
        if args.hashes:
            library.hash_all(progress=progress_bar("Hashing"))
        library.hash_cache.save()
    entries = library.entries
    if args.json:
        sys.stdout.write(json_text([entry_json(entry) for entry in entries], indent=2) + "\n")
        print(summary(library), file=sys.stderr)
    else:
        print_table(entries)
        print_groups(library)
        print(summary(library))
    return 1 if any(entry.is_problem for entry in entries) else 0


def entry_json(entry: Entry) -> dict[str, Any]:
    """One file as JSON; every name goes through ``shown`` (a non-UTF-8 file name byte becomes U+FFFD), so the
    output is valid UTF-8 JSON whatever the folder holds."""
    return {
        "keyword": shown(entry.keyword), "path": shown(entry.relpath), "root": shown(entry.root),
        "folder": shown(entry.folder), "format": entry.format,
        "layout": shown(entry.header.layout) if entry.header else None,
        "family": entry.family.value, "vectors": entry.vectors, "width": entry.width,
        "status": entry.status.value, "reason": shown(entry.reason), "sha256": entry.sha256, "size": entry.size,
        "mtime": entry.mtime_ns / 1e9, "preview": shown(entry.sidecars.preview) if entry.sidecars.preview else None,
        "collides_with": [shown(os.path.relpath(path, entry.root)) for path in entry.collides_with],
    }


def print_table(entries: tuple[Entry, ...]) -> None:
    rows = [("KEYWORD", "FAMILY", "VECTORS", "STATUS", "FOLDER", "REASON")]
    for entry in entries:
        family = entry.family.label if entry.header else "-"
        vectors = str(entry.vectors) if entry.header else "-"
        note = entry.reason or ("" if entry.keyword == os.path.splitext(entry.filename)[0]
                                else f"from {entry.filename}")
        rows.append(tuple(printable(cell) for cell in (entry.keyword, family, vectors, entry.status.value,
                                                   entry.folder or ".", note)))
    widths = [min(max(len(row[i]) for row in rows), 40) for i in range(5)]
    for row in rows:
        cells = [cell.ljust(width) if len(cell) <= width else cell[: width - 1] + "…"
                 for cell, width in zip(row[:5], widths)]
        print("  ".join(cells + [row[5]]).rstrip())


def print_groups(library: Library) -> None:
    """``Groups (N):`` then one line per group: name, target, members, and what will stay plain text."""
    groups = groups_of(library)
    if not groups:
        return
    lookup = MemberLookup(library)
    print(f"Groups ({len(groups)}):")
    for group in groups:
        if group.problem:
            print(f"  {printable(group.relpath)}: cannot be used: {printable(group.problem)}")
            continue
        states = [lookup.state(member) for member in group.members]
        texts = [f"({m.keyword}:{m.weight:g})" if m.weight is not None else m.keyword for m in group.members]
        line = f"  {group.name} ({group.target}): {', '.join(texts)}"
        for label, kinds in (("missing", ("missing",)), ("not usable", ("incompatible", "failed"))):
            names = [state.member.keyword for state in states if state.status in kinds]
            line += f"; {label}: {', '.join(names)}" if names else ""
        print(printable(line))


def summary(library: Library) -> str:
    """The WebUI console's wording, plus the counts it never shows."""
    counts = library.counts()
    loaded, skipped = counts[Status.LOADED.value], counts[Status.INCOMPATIBLE.value]
    line = f"Loaded a total of {loaded} textual inversion embeddings. Skipped {skipped}."
    extra = [f"{counts[s.value]} {s.value}" for s in (Status.DUPLICATE, Status.UNSAFE, Status.CORRUPT,
                                                      Status.UNSUPPORTED) if counts[s.value]]
    bad = sum(1 for entry in library.entries if entry.is_problem and entry.status is Status.NOT_AN_EMBEDDING)
    if bad:
        extra.append(f"{bad} not an embedding")
    return line + (f" Not used: {', '.join(extra)}." if extra else "")
