"""Keyword lookup for the chunker: which token-id runs are embeddings, and which name files that stay plain text.

``KeywordIndex`` is the WebUI's ``ids_lookup`` (first id, longest match first) without its linear scan;
``usable_entries``/``unusable_entries`` say which library entries feed each index for a model family. Each entry is
registered under its bare keyword (unless bare keywords are off) and under every ``embedding:<name>`` spelling
(``explicit.names_for``), which always works; ``SpellingIds`` tokenizes those from their parts. A file that lost
its keyword to another (``duplicate``: ``old/EasyNegative.pt`` beside ``EasyNegative.safetensors``) answers to its own
``embedding:<name>`` spellings with the winner (``duplicate_aliases``): one keyword is one embedding, the rule the tab
shows ("which is used instead"), and the diagnostics say so.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..library import Library
from ..library.collisions import keyword_key
from ..records import Entry, Family, Status
from .explicit import PREFIX, is_claimed, spelling_parts
from .tokenizer import Tokenizer


def keyword_spellings(entry: Entry, bare: bool = True, explicit: bool = True) -> list[tuple[str, ...]]:
    """The texts (as parts) whose token ids stand for ``entry``: its keyword (``bare``) and ``embedding:<name>``."""
    return [parts for parts, _ in owned_spellings(entry, bare, explicit)]


def owned_spellings(entry: Entry, bare: bool = True,
                    explicit: bool = True) -> list[tuple[tuple[str, ...], bool]]:
    """``keyword_spellings``, each with whether it is only claimed (a name stored inside the file, not its own)."""
    claimed = is_claimed(entry, (entry.keyword,))
    return ([((entry.keyword,), claimed)] if bare else []) + \
        ([((PREFIX, *parts), is_claimed(entry, parts)) for parts in spelling_parts(entry)] if explicit else [])


def duplicate_aliases(entries: Iterable[Entry], usable: Iterable[Entry]) -> list[tuple[Entry, Entry]]:
    """(duplicate, winner) for each ``duplicate`` file whose keyword's winner is among ``usable``."""
    winners = {keyword_key(entry.keyword): entry for entry in usable}
    return [(entry, winners[keyword_key(entry.keyword)]) for entry in entries
            if entry.status is Status.DUPLICATE and keyword_key(entry.keyword) in winners]


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
    linear scan (10,000 keywords sharing a first token cost one dict lookup per length, not 10,000 compares).
    ``aliases``: (spelled as, means) pairs whose ``embedding:<name>`` spellings stand for the second entry."""

    def __init__(self, entries: Iterable[Entry], tokenizer: Tokenizer, bare: bool = True,
                 explicit: bool = True, aliases: Iterable[tuple[Entry, Entry]] = ()) -> None:
        by_first: dict[int, dict[int, dict[tuple[int, ...], Entry]]] = {}
        claimed_ids: set[tuple[int, ...]] = set()
        spelled = SpellingIds(tokenizer)
        for entry in entries:
            for parts, claimed in owned_spellings(entry, bare, explicit):
                ids = spelled.joined(parts)
                if not ids:
                    continue
                # Two names can tokenize alike ("bad -hands-5" / "bad-hands-5"): a file's own name beats a name
                # stored inside another file, whatever the order; otherwise the first registered (library order).
                names = by_first.setdefault(ids[0], {}).setdefault(len(ids), {})
                if ids not in names or (ids in claimed_ids and not claimed):
                    names[ids] = entry
                    (claimed_ids.add if claimed else claimed_ids.discard)(ids)
        for alias, means in aliases:  # after every entry: an alias never displaces a registered spelling
            for parts in keyword_spellings(alias, False, explicit):
                ids = spelled.joined(parts)
                if ids:
                    by_first.setdefault(ids[0], {}).setdefault(len(ids), {}).setdefault(ids, means)
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
    usable_keys = {keyword_key(entry.keyword) for entry in usable_entries(library, family)}
    return [entry for entry in library.entries if keyword_key(entry.keyword) not in usable_keys
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
    built = Indexes(KeywordIndex(usable, tokenizer, bare, aliases=duplicate_aliases(library.entries, usable)),
                    KeywordIndex(unusable_entries(library, family), tokenizer, bare),
                    None if bare else KeywordIndex(usable, tokenizer, explicit=False))
    per_key[key] = (version, tokenizer, built)
    return built
