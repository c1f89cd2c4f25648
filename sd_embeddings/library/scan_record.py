"""An entry's scan result as plain JSON, so the next run can trust it without reading the file again."""

from __future__ import annotations

from typing import Any

from ..records import Entry, Header, Shape, Status

_HEADER_FIELDS = ("layout", "name", "step", "sd_checkpoint", "sd_checkpoint_name")


def store(entry: Entry) -> dict[str, Any]:
    record: dict[str, Any] = {"status": (entry.file_status or entry.status).value, "reason": entry.file_reason,
                              "keyword": entry.keyword, "verified": entry.verified}
    if entry.header is not None:
        record["parts"] = {key: list(shape) for key, shape in entry.header.shape.parts.items()}
        record.update({name: getattr(entry.header, name) for name in _HEADER_FIELDS})
    return record


def restore(entry: Entry, record: dict[str, Any]) -> bool:
    """Fill ``entry`` from a stored record; False (entry untouched) if the record is not usable."""
    try:
        status = Status(record["status"])
        header = None
        if "parts" in record:
            parts = {str(k): (int(v[0]), int(v[1])) for k, v in record["parts"].items()}
            header = Header(Shape(parts), **{name: record.get(name) for name in _HEADER_FIELDS})
        elif status is Status.LOADED:
            return False
        keyword, reason, verified = str(record["keyword"]), str(record["reason"]), bool(record["verified"])
    except (KeyError, TypeError, ValueError, IndexError):
        return False
    entry.header, entry.keyword, entry.verified = header, keyword, verified
    entry.status = entry.file_status = status
    entry.reason = entry.file_reason = reason
    return True
