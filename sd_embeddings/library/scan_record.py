"""An entry's scan result as plain JSON, so the next run can trust it without reading the file again."""

from __future__ import annotations

import re
import sys
from typing import Any

from ..records import Entry, Header, Shape, Status

_HEADER_FIELDS = ("layout", "name", "step", "sd_checkpoint", "sd_checkpoint_name")
_FINGERPRINT = re.compile("[0-9a-f]{64}")


def store(entry: Entry) -> dict[str, Any]:
    record: dict[str, Any] = {"status": (entry.file_status or entry.status).value, "reason": entry.file_reason,
                              "keyword": entry.keyword, "verified": entry.verified}
    if entry.fingerprint:
        record["fingerprint"] = entry.fingerprint
    if entry.header is not None:
        record["parts"] = {key: list(shape) for key, shape in entry.header.shape.parts.items()}
        record.update({name: getattr(entry.header, name) for name in _HEADER_FIELDS})
    return record


def restore(entry: Entry, record: dict[str, Any]) -> bool:
    """Fill ``entry`` from a stored record; False (entry untouched) if the record is not usable.

    The cache file is outside our control (a crash, a disk error, a hand edit): every field is type-checked,
    so a damaged record is simply read again from the file instead of surfacing as an error later."""
    try:
        status = Status(record["status"])
        keyword, reason, verified = record["keyword"], record["reason"], record["verified"]
        if not (_text(keyword, required=True) and _text(reason) and isinstance(verified, bool)):
            return False
        header = _header(record) if "parts" in record else None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return False
    if header is None and ("parts" in record or status is Status.LOADED):
        return False
    entry.header, entry.keyword, entry.verified = header, keyword, verified
    found = record.get("fingerprint")
    entry.fingerprint = found if isinstance(found, str) and _FINGERPRINT.fullmatch(found) else None
    entry.status = entry.file_status = status
    entry.reason = entry.file_reason = reason
    return True


def _header(record: dict[str, Any]) -> Header | None:
    parts = record["parts"]
    if not isinstance(parts, dict) or not parts:
        return None
    shapes: dict[str, tuple[int, int]] = {}
    for key, value in parts.items():
        if not (isinstance(value, list) and len(value) == 2 and all(_count(v) for v in value)):
            return None
        shapes[key] = (value[0], value[1])
    fields = {name: record.get(name) for name in _HEADER_FIELDS}
    if not (_text(fields["layout"], required=True) and all(_text(fields[name]) or fields[name] is None
                                                          for name in ("name", "sd_checkpoint", "sd_checkpoint_name"))):
        return None
    if fields["step"] is not None and not (type(fields["step"]) is int and abs(fields["step"]) < 2**63):
        return None
    for name in ("layout", "sd_checkpoint", "sd_checkpoint_name"):  # a few distinct values over 10,000 files
        if fields[name] is not None:
            fields[name] = sys.intern(fields[name])
    return Header(Shape.shared(shapes), **fields)


def _text(value: object, required: bool = False) -> bool:
    return isinstance(value, str) and len(value) <= 4096 and (bool(value) or not required)


def _count(value: object) -> bool:
    return type(value) is int and 0 < value < 2**31
