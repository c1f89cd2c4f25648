"""Keyword lookup for the chunker: which token-id runs are embeddings, and which name files that stay plain text.

``KeywordIndex`` is the WebUI's ``ids_lookup`` (first id, longest match first) without its linear scan;
``usable_entries``/``unusable_entries`` say which library entries feed each index for a model family. Each entry is
registered under its bare keyword (unless bare keywords are off) and under every ``embedding:<name>`` spelling
(``explicit.names_for``), which always works; ``SpellingIds`` tokenizes those from their parts.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..library import Library
from ..records import Entry, Family, Status
from .explicit import PREFIX, spelling_parts
from .tokenizer import Tokenizer


def keyword_spellings(entry: Entry, bare: bool = True, explicit: bool = True) -> list[tuple[str, ...]]:
    """The texts (as parts) whose token ids stand for ``entry``: its keyword (``bare``) and ``embedding:<name>``."""
    return ([(entry.keyword,)] if bare else []) + \
        ([(PREFIX, *parts) for parts in spelling_parts(entry)] if explicit else [])


def _kind(ch: str) -> str:
    return "L" if ch.isalpha() else "N" if ch.isdigit() else "S" if ch.isspace() else "P"


class SpellingIds:
    """Token ids of texts made of parts, each part tokenized once. CLIP cuts text into pieces (letter runs, single
    digits, punctuation runs) and encodes each piece alone, so where two parts meet at a piece edge (a letter or
    digit beside punctuation, any digit, a space) the text's ids are the parts' ids one after the other: then
    ``embedding:`` + a keyword costs no new tokenization. ASCII parts only, and only for a tokenizer that is seen
    to behave so (a probe); anything else is tokenized whole."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.memo: dict[str, tuple[int, ...]] = {}
        self.splits = self.ids(PREFIX + "a1.b") == self.ids(PREFIX) + self.ids("a") + self.ids("1") + self.ids(".b")

    def ids(self, text: str) -> tuple[int, ...]:
        found = self.memo.get(text)
        if found is None:
            found = self.memo[text] = tuple(self.tokenizer.encode(text))
        return found

    def joined(self, parts: tuple[str, ...]) -> tuple[int, ...]:
        if len(parts) == 1 or not (self.splits and all(part.isascii() for part in parts) and all(
                _kind(a[-1]) in ("N", "S") or _kind(b[0]) in ("N", "S") or _kind(a[-1]) != _kind(b[0])
                for a, b in zip(parts, parts[1:])) and not any(part.endswith("'") for part in parts)):
            return self.ids("".join(parts))
        return tuple(token for part in parts for token in self.ids(part))


class KeywordIndex:
    """Keyword token ids by first id, then by length, longest first: the WebUI's ``ids_lookup``, without its
    linear scan (10,000 keywords sharing a first token cost one dict lookup per length, not 10,000 compares)."""

    def __init__(self, entries: Iterable[Entry], tokenizer: Tokenizer, bare: bool = True,
                 explicit: bool = True) -> None:
        by_first: dict[int, dict[int, dict[tuple[int, ...], Entry]]] = {}
        spelled = SpellingIds(tokenizer)
        for entry in entries:
            for parts in keyword_spellings(entry, bare, explicit):
                ids = spelled.joined(parts)
                if ids:
                    # first registered wins a tie (library order), as two names can tokenize alike ("a!" / "a !")
                    by_first.setdefault(ids[0], {}).setdefault(len(ids), {}).setdefault(ids, entry)
        self.buckets = {first: sorted(lengths.items(), reverse=True) for first, lengths in by_first.items()}

    def match(self, tokens: Sequence[int], position: int) -> tuple[Entry, int] | None:
        bucket = self.buckets.get(tokens[position])
        if bucket:
            for length, names in bucket:
                entry = names.get(tuple(tokens[position:position + length]))
                if entry is not None:
                    return entry, length
        return None

    def __len__(self) -> int:
        return sum(len(names) for bucket in self.buckets.values() for _, names in bucket)


@dataclass
class Indexes:
    usable: KeywordIndex
    unusable: KeywordIndex
    """Keywords that will stay plain text: incompatible winners and files that failed to load."""
    plain: KeywordIndex | None = None
    """With bare keywords off: the usable entries' bare keywords, which stay plain text (for a hint)."""


_INDEX_CACHE: weakref.WeakKeyDictionary[Library, dict[tuple, tuple[int, Tokenizer, Indexes]]] = \
    weakref.WeakKeyDictionary()


def usable_entries(library: Library, family: Family | None = None) -> list[Entry]:
    """Entries whose keyword becomes embedding rows (``family`` narrows a library scanned without one)."""
    return [entry for entry in library.usable() if family is None or entry.family is family]


def unusable_entries(library: Library, family: Family | None = None) -> list[Entry]:
    """Entries whose keyword stays plain text although it names a file: incompatible winners and failed files."""
    usable_keys = {entry.keyword.casefold() for entry in usable_entries(library, family)}
    return [entry for entry in library.entries if entry.keyword.casefold() not in usable_keys
            and not entry.is_plain_image  # a picture without embedding data names no embedding
            and (entry.status in (Status.INCOMPATIBLE, Status.LOADED)
                 or (entry.file_status or entry.status).is_problem)]


def indexes_for(library: Library, tokenizer: Tokenizer, family: Family | None = None, bare: bool = True) -> Indexes:
    """Keyword indexes of a library for a model family, rebuilt only when the library's version changes.
    ``bare=False``: only ``embedding:name`` fires (the "bare keywords trigger embeddings" setting off)."""
    # The version is read before the entries: a refresh in between then tags the index as older than the
    # entries it holds, so it is rebuilt next time (read after, old entries would pass as current for good).
    version = library.version
    per_key = _INDEX_CACHE.setdefault(library, {})
    key = (id(tokenizer), family, bare)
    cached = per_key.get(key)
    if cached is not None and cached[0] == version and cached[1] is tokenizer:
        return cached[2]
    usable = usable_entries(library, family)
    built = Indexes(KeywordIndex(usable, tokenizer, bare),
                    KeywordIndex(unusable_entries(library, family), tokenizer, bare),
                    None if bare else KeywordIndex(usable, tokenizer, explicit=False))
    per_key[key] = (version, tokenizer, built)
    return built
