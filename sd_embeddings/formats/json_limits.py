"""JSON from a file, refused before parsing when parsing it would cost too much memory.

Python objects cost 8 to 30 times the characters that spell them (``[],`` is a 64-byte list, ``"ab",`` a 51-byte
string), so the length alone does not bound a parse: the counts of values, containers and strings, taken on the
raw bytes at C speed, do.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CorruptFileError


@dataclass(frozen=True)
class JsonLimits:
    size: int
    values: int
    containers: int
    strings: int


def check(raw: bytes, limits: JsonLimits, path: str, what: str) -> None:
    """Raise ``CorruptFileError`` naming the first count over its limit."""
    counts = {"bytes": (len(raw), limits.size), "values": (raw.count(b","), limits.values),
              "lists and objects": (raw.count(b"[") + raw.count(b"{"), limits.containers),
              "strings": (raw.count(b'"') // 2, limits.strings)}
    for name, (found, limit) in counts.items():
        if found > limit:
            raise CorruptFileError(path, f"{what} holds {found:,} {name}, more than an embedding file "
                                         f"({limit:,}); refused")
