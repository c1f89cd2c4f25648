"""The ``TI hashes`` infotext entry: writing it (one entry per embedding) and resolving a pasted one.

Format, as the WebUI writes it and Civitai-style tools read it: ``TI hashes: "name: hash12, name2: hash12"``,
names with ``:`` and ``,`` removed, the value JSON-quoted in the parameter line because it contains ``:``.
Unlike the WebUI, an embedding used in both prompts, in several chunks or by both SDXL encoders appears once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from ..library import Library
from ..library.collisions import keyword_key
from ..records import Entry

KEY = "TI hashes"
_VALUE = re.compile(r"TI hashes:\s*(\"(?:\\.|[^\\\"])*\"|[^,\n]*)")
_HASH12 = re.compile(r"[0-9a-fA-F]{12}")
MAX_PAIRS = 64
"""Pairs read from one pasted text; more are ignored. A generation uses a few embeddings, and a picture from a
stranger may carry 100,000 pairs: each costs a look-up, and each renamed one a pass over the pasted prompts."""
MAX_NAME = 128
"""Longer names or hashes are ignored: no keyword is that long, and renaming one would compare it at every
position of the prompts."""


def sanitize(name: str) -> str:
    """The WebUI's name cleaning for this entry: ``:`` and ``,`` would break the list, so they are dropped."""
    return name.replace(":", "").replace(",", "")


def ti_hashes(entries: Iterable[Entry], library: Library | None = None) -> str:
    """``name: hash12, ...`` for the embeddings used, in order of first use, each once; unhashed ones skipped."""
    items: list[str] = []
    seen: set[str] = set()
    for entry in entries:
        if entry.path in seen:
            continue
        seen.add(entry.path)
        if entry.sha256 is None and library is not None:
            library.ensure_hash(entry)
        if entry.shorthash:
            items.append(f"{sanitize(entry.keyword)}: {entry.shorthash}")
    return ", ".join(items)


def infotext_item(value: str) -> str:
    """The whole ``TI hashes: "..."`` item (quoted as the WebUI quotes values with ``,``, ``:`` or newlines)."""
    quoted = json.dumps(value, ensure_ascii=False) if any(c in value for c in ",:\n") else value
    return f"{KEY}: {quoted}"


def parse_ti_hashes(text: str) -> list[tuple[str, str]]:
    """``(name, hash)`` pairs from pasted infotext (whole text or the bare value), duplicates removed, at most
    ``MAX_PAIRS``, names and hashes of at most ``MAX_NAME`` characters."""
    match = _VALUE.search(text)
    value = text
    if match is not None:
        value = match.group(1).strip()
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = value.strip('"')
    pairs: dict[tuple[str, str], None] = {}
    for item in value.split(","):
        name, _, shorthash = item.partition(":")
        pair = (name.strip(), shorthash.strip())
        if pair[0] and len(pair[0]) <= MAX_NAME and len(pair[1]) <= MAX_NAME:
            pairs.setdefault(pair)
            if len(pairs) == MAX_PAIRS:
                break
    return list(pairs)


@dataclass
class Resolved:
    name: str
    hash: str
    status: str
    """``ok`` (same name, same hash), ``renamed`` (this hash under another name here), ``changed`` (this name,
    another hash), ``missing`` (neither); ``unhashed`` (ok by name; the pasted value is no hash, e.g. a Lora name)."""
    keyword: str | None = None
    file: str | None = None
    local_hash: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def resolve(pairs: Iterable[tuple[str, str]], library: Library) -> list[Resolved]:
    """Map pasted ``name: hash`` pairs to local entries (hashing files that have no hash yet)."""
    candidates = [e for e in library.entries if (e.file_status or e.status).value == "loaded"]
    by_hash: dict[str, Entry] = {}
    for entry in candidates:
        if library.ensure_hash(entry):
            by_hash.setdefault(entry.shorthash or "", entry)
    by_name = {keyword_key(sanitize(e.keyword)): e for e in reversed(candidates)}
    winner_names = {keyword_key(sanitize(e.keyword)): e for e in library.usable()}
    by_name.update(winner_names)
    results = []
    for name, shorthash in pairs:
        named = by_name.get(keyword_key(name))
        hashed = by_hash.get(shorthash.lower()) if _HASH12.fullmatch(shorthash) else None
        if named is not None and not _HASH12.fullmatch(shorthash):
            results.append(_found(name, shorthash, "unhashed", named))
        elif named is not None and named.shorthash == shorthash.lower():
            results.append(_found(name, shorthash, "ok", named))
        elif hashed is not None:
            results.append(_found(name, shorthash, "renamed", hashed))
        elif named is not None:
            results.append(_found(name, shorthash, "changed", named))
        else:
            results.append(Resolved(name, shorthash, "missing"))
    return results


def _found(name: str, shorthash: str, status: str, entry: Entry) -> Resolved:
    return Resolved(name, shorthash, status, entry.keyword, entry.relpath, entry.shorthash)
