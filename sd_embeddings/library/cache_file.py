"""The scan cache on disk: one JSON list per column, not one object per file.

Version 3 wrote ``{"files": {path: {17 keys, a nested scan object}}}``: 600,000 JSON nodes for 10,000 files, a
third of a second to write and as much to read. Columns make a handful of long lists of plain values, which
``json`` writes and reads at C speed (see ``benchmarks/scan_cache.py``), and the records are kept in memory as
tuples (``Record``), not dicts.

Sharing: the file is replaced in one rename (``atomic.write_atomic``), so a reader on another host sees a whole old
or a whole new file, never a mix; two hosts writing at once only lose each other's additions (files are read again).
Records are keyed by absolute path and stamped with size, mtime, ctime and inode, so a host that mounts the share
elsewhere, or sees other inodes, simply finds no record of its own: it never takes another file's result.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..formats import json_limits

VERSION = 5
"""Version 4: columns; 5: the vector fingerprint column. Older files are dropped and their files read again."""
STAMP_COLUMNS = ("size", "mtime_ns", "ctime_ns", "inode")
SCAN_COLUMNS = ("status", "reason", "keyword", "verified", "fingerprint", "parts", "layout", "name", "step",
                "sd_checkpoint", "sd_checkpoint_name")
"""A scan record's fields (``scan_record.store``), ``parts`` flattened to ``[key, rows, width, ...]``."""
COLUMNS = ("path", *STAMP_COLUMNS, "sha256", *SCAN_COLUMNS)
MAX_BYTES = 256 * 1024 * 1024
LIMITS = json_limits.JsonLimits(size=MAX_BYTES, values=4_000_000, containers=300_000, strings=3_000_000)
"""About twice what a 100,000-file cache holds (17 values, 1 list and 9 strings per file)."""
_SHA256 = re.compile(r"[0-9a-f]{64}")

Stamp = tuple[int, int, int, int]
Record = tuple[Stamp, "str | None", "tuple | None"]
"""``(stamp, sha256, scan row)``; the scan row holds ``SCAN_COLUMNS`` in order, ``parts`` flat as in the file."""
_PARTS = SCAN_COLUMNS.index("parts")
_NO_SCAN = (None,) * len(SCAN_COLUMNS)


def scan_row(scan: dict[str, Any]) -> tuple:
    row = [scan.get(name) for name in SCAN_COLUMNS]
    parts = row[_PARTS]
    if isinstance(parts, dict):
        row[_PARTS] = [value for key, (rows, width) in parts.items() for value in (key, rows, width)]
    return tuple(row)


def scan_dict(row: tuple) -> dict[str, Any] | None:
    """Back to ``scan_record``'s form (header fields only when the record has ``parts``); None if damaged."""
    record = dict(zip(SCAN_COLUMNS, row))
    if record["parts"] is None:
        for name in SCAN_COLUMNS[_PARTS:]:
            del record[name]
        return record
    flat = record["parts"]
    if not isinstance(flat, list) or len(flat) % 3 or not all(isinstance(k, str) for k in flat[::3]):
        return None
    record["parts"] = {flat[i]: [flat[i + 1], flat[i + 2]] for i in range(0, len(flat), 3)}
    return record


def encode(items: dict[str, Record]) -> bytes:
    """The document; columns are made by transposing the records (C-speed ``zip``), not field by field."""
    records = list(items.values())
    columns: dict[str, Any] = {"path": list(items)}
    columns.update(zip(STAMP_COLUMNS, zip(*(r[0] for r in records))) if records else
                   ((name, ()) for name in STAMP_COLUMNS))
    columns["sha256"] = [r[1] for r in records]
    scans = zip(*(r[2] or _NO_SCAN for r in records)) if records else (() for _ in SCAN_COLUMNS)
    columns.update(zip(SCAN_COLUMNS, scans))
    return json.dumps({"version": VERSION, "columns": columns}, separators=(",", ":")).encode("utf-8")


def decode(raw: bytes, path: str) -> tuple[dict[str, Record], int] | None:
    """``(records, damaged count)``; None for a file of another version. Raises on a damaged document (the caller
    ignores the whole file then); a damaged record is only skipped (its file is read again)."""
    json_limits.check(raw, LIMITS, path, "the scan cache")
    document = json.loads(raw.decode("utf-8"))
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    if document.get("version") != VERSION:
        return None
    columns = document.get("columns")
    if not isinstance(columns, dict) or not all(isinstance(columns.get(name), list) for name in COLUMNS):
        raise ValueError("the columns are missing")
    count = len(columns["path"])
    if any(len(columns[name]) != count for name in COLUMNS):
        raise ValueError("the columns differ in length")
    records: dict[str, Record] = {}
    for values in zip(*(columns[name] for name in COLUMNS)):
        record = _record(values)
        if record is not None:
            records[values[0]] = record
    return records, count - len(records)


def _record(values: tuple) -> Record | None:
    """One row, or None when a key field has the wrong type or range (a damaged or edited file); the scan fields
    are checked when used (``scan_dict``, ``scan_record.restore``)."""
    path, stamp, sha256, scan = values[0], values[1:5], values[5], values[6:]
    if not isinstance(path, str) or not all(type(v) is int and 0 <= v < 2**64 for v in stamp):
        return None  # also refuses floats such as 1e999 (inf) and booleans
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        return None
    return tuple(stamp), sha256, (scan if scan[0] is not None else None)
