"""Why a word meant as an embedding stays plain text: warnings for one tokenized prompt.

Kinds (also explained in the README, "How keywords are matched"):

- ``incompatible``: the word is the keyword of an embedding made for another model family.
- ``failed``: the word is the keyword of a file that could not be loaded (unsafe, corrupt, not an embedding...).
- ``near-miss``: the word is close to a usable keyword but not equal to it as tokens: it differs in ``_``/``-``/
  spaces, or by one letter or two swapped neighbours (keywords of 5+ letters). Case alone never warns: matching
  ignores case.
- ``too-long``: an embedding has more than 75 vectors and is spread over several chunks.
- ``common-word``: a keyword that is a common English word (``library.common_words``) was typed bare and used as
  the embedding; the message names the word and the two ways out.
- ``explicit-only``: bare keywords are off and a usable keyword was typed bare (it stays a word); common words
  are left alone here, as turning bare keywords off is how one keeps them words.
- ``not-found``: ``embedding:name`` names no file at all.
- ``duplicate``: ``embedding:name`` names a file that lost its keyword to another one, which was used instead.
  (A name of a file for another model, or one that failed, whose keyword another file holds, gets ``incompatible``
  or ``failed``.)
"""

from __future__ import annotations

import array
import bisect
import re
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..library import Library
from ..library.bulk import gc_paused
from ..library.collisions import compatibility
from ..library.common_words import is_common_word
from ..records import Entry, Family, Status
from . import explicit
from .chunks import BREAK_WEIGHT, CHUNK_LENGTH, PromptTokens, parse_attention

_WORD = re.compile(r"[^\s,()\[\]{}|:<>]+")
_EDGE_PUNCTUATION = ".!?;\"'`"
MIN_EDIT_LENGTH = 5


@dataclass(frozen=True)
class PromptWarning:
    kind: str
    word: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "word": self.word, "message": self.message}


def squash(text: str) -> str:
    """Case, underscores, dashes and spaces removed: what a near-miss is compared on."""
    return re.sub(r"[\s_\-]+", "", text.casefold())


class NearMissIndex:
    """Usable keywords by squashed form and by every one-letter deletion of it (finds one-edit neighbours fast).

    The forms are not kept, only their hashes: one flat sorted array of ``hash << 20 | entry number``. 10,000
    keywords make about 80,000 forms, which as a dict of strings to lists held about 9 MB for as long as the WebUI
    runs (built at the first generation); the array holds 0.6 MB. A hash two forms share only brings one more
    candidate, and every candidate is compared as text (``squash``, ``_one_edit``) before it is named."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries: list[Entry] = []
        self.longest = 0
        """A word longer than this + 1 is no keyword's near miss: its deletions (quadratic in its length) are
        never made, so a prompt word of 100,000 letters costs one look-up."""
        self.keys = array.array("Q", sorted(self._numbered(entries)))

    def _numbered(self, entries: Iterable[Entry]) -> list[int]:
        """Takes ``entries`` in (numbered after those already in) and returns their forms' keys."""
        keys: list[int] = []
        for entry in entries:
            key = squash(entry.keyword)
            if not key or len(self.entries) > _NUMBER:
                continue
            number = len(self.entries)
            self.entries.append(entry)
            self.longest = max(self.longest, len(key))
            forms = {key, *_deletions(key)} if len(key) >= MIN_EDIT_LENGTH else (key,)
            keys.extend(_hashed(form) << _SHIFT | number for form in forms)
        return keys

    def extended(self, added: list[Entry]) -> NearMissIndex:
        """A new index: this one's keywords and ``added`` (a few files dropped in), without hashing all again.
        This one is left as it is: a generation on another thread may be reading it."""
        grown = NearMissIndex([])
        grown.entries, grown.longest, grown.keys = list(self.entries), self.longest, array.array("Q", self.keys)
        for key in sorted(grown._numbered(added)):
            grown.keys.insert(bisect.bisect_left(grown.keys, key), key)
        return grown

    def _candidates(self, form: str) -> Iterator[Entry]:
        """Entries with a form of this hash, in library order."""
        keys, hashed = self.keys, _hashed(form)
        at = bisect.bisect_left(keys, hashed << _SHIFT)
        while at < len(keys) and keys[at] >> _SHIFT == hashed:
            yield self.entries[keys[at] & _NUMBER]
            at += 1

    def find(self, word: str) -> tuple[Entry, str] | None:
        key = squash(word)
        for entry in self._candidates(key):
            if squash(entry.keyword) == key:
                return entry, "differs only in case, underscores, dashes or spaces"
        if not MIN_EDIT_LENGTH <= len(key) <= self.longest + 1:
            return None
        for variant in (key, *_deletions(key)):
            for entry in self._candidates(variant):
                other = squash(entry.keyword)
                if len(other) >= MIN_EDIT_LENGTH and _one_edit(key, other):
                    swapped = len(key) == len(other) and sorted(key) == sorted(other)
                    return entry, "has two letters swapped" if swapped else "is one letter off"
        return None


_SHIFT = 20
_NUMBER = (1 << _SHIFT) - 1
"""Entry numbers take the low 20 bits (a library past a million usable keywords gets no near misses beyond)."""


def _hashed(form: str) -> int:
    """44 bits of the form's hash: with the entry number, one unsigned 64-bit value."""
    return hash(form) & ((1 << (64 - _SHIFT)) - 1)


def _deletions(key: str) -> set[str]:
    return {key[:i] + key[i + 1:] for i in range(len(key))}


def _one_edit(a: str, b: str) -> bool:
    """Damerau distance exactly 1: one insert, delete, substitution or swap of two neighbours (``mystyel``)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b) and a[i + 2:] == b[i + 2:] and a[i:i + 2] == b[i:i + 2][::-1]:
        return True
    return a[i + (len(a) == len(b)):] == b[i + 1:]


_NEAR_CACHE: weakref.WeakKeyDictionary[Library, tuple[int, Family | None, NearMissIndex]] = \
    weakref.WeakKeyDictionary()


def _grown(index: NearMissIndex, usable: list[Entry]) -> NearMissIndex | None:
    """``index`` extended by the usable entries it lacks, when it lacks only a few and holds none that went away
    (entries are replaced, never changed, so identity tells); None: build it again."""
    held = {id(entry) for entry in index.entries}
    added = [entry for entry in usable if id(entry) not in held]
    if len(added) > _FEW_ADDED or len(usable) - len(added) != len(index.entries):
        return None
    return index.extended(added)


_FEW_ADDED = 64
"""Up to this many new keywords are added to the index it has; more, and it is built again."""


def near_miss_index(library: Library, family: Family | None) -> NearMissIndex:
    version = library.version  # before the entries, as in keywords.indexes_for (a refresh may come between)
    cached = _NEAR_CACHE.get(library)
    if cached is not None and cached[:2] == (version, family):
        return cached[2]
    usable = [e for e in library.usable() if family is None or e.family is family]
    if cached is not None and cached[1] == family:
        index = _grown(cached[2], usable)
        if index is not None:
            _NEAR_CACHE[library] = (version, family, index)
            return index
    with gc_paused():  # about 80,000 forms for 10,000 keywords: no collector passes over a WebUI's heap meanwhile
        index = NearMissIndex(usable)
    _NEAR_CACHE[library] = (version, family, index)
    return index


def words_of(text: str) -> list[str]:
    """Plain words of a prompt, attention syntax removed (``(Easy_Negative:1.2)`` -> ``Easy_Negative``)."""
    words = []
    for piece, weight in parse_attention(text):
        if weight == BREAK_WEIGHT and piece == "BREAK":
            continue
        words += [w.strip(_EDGE_PUNCTUATION) for w in _WORD.findall(piece)]
    return [w for w in words if w]


def why_unusable(entry: Entry, family: Family | None) -> tuple[str, str]:
    """(kind, reason) for an entry whose keyword stays plain text."""
    file_status = entry.file_status or entry.status
    if file_status.is_problem:
        return "failed", f"{file_status.value}: {entry.file_reason or entry.reason}"
    if entry.status is Status.INCOMPATIBLE and entry.reason:
        return "incompatible", entry.reason
    ok, reason = compatibility(entry, family)
    return "incompatible", reason or entry.reason or entry.status.value


def warnings_for(tokens: PromptTokens, library: Library, family: Family | None) -> list[PromptWarning]:
    found: dict[tuple[str, str], PromptWarning] = {}

    def add(kind: str, word: str, message: str) -> None:
        found.setdefault((kind, word.casefold()), PromptWarning(kind, word, message))

    _notice_warnings(tokens, family, add)
    _word_warnings(tokens, library, family, add)
    return list(found.values())


def _notice_warnings(tokens: PromptTokens, family: Family | None, add: Callable[[str, str, str], None]) -> None:
    """What the chunker noticed: unusable files' keywords, too-long embeddings, bare keywords that stayed words."""
    for notice in tokens.notices:
        entry = notice.entry
        if notice.kind == "bare":
            if not is_common_word(entry.keyword):
                add("explicit-only", entry.keyword, f"'{entry.keyword}' stays plain text: bare keywords are off; "
                    f"write embedding:{entry.keyword} to use {entry.relpath}.")
        elif notice.kind == "too-long":
            parts = -(-entry.vectors // CHUNK_LENGTH)
            add("too-long", entry.keyword, f"{entry.keyword} has {entry.vectors} vectors, more than the "
                f"{CHUNK_LENGTH} a chunk holds: it is spread over {parts} chunks (the WebUI would fail here).")
        else:
            kind, reason = why_unusable(entry, family)
            what = "could not be loaded" if kind == "failed" else "does not fit this model"
            add(kind, entry.keyword, f"'{entry.keyword}' stays plain text: {entry.relpath} {what} ({reason}).")


def _word_warnings(tokens: PromptTokens, library: Library, family: Family | None,
                   add: Callable[[str, str, str], None]) -> None:
    """What the words say: near misses, common words used as embeddings, ``embedding:name`` naming nothing."""
    near = near_miss_index(library, family)
    for word in words_of(explicit.without_references(tokens.text)):
        known = library.get(word)
        if known is not None:  # the exact keyword (any case): matched, or reported above
            if tokens.bare_keywords and is_common_word(word) and _usable(known, family):
                add("common-word", word, f"'{word}' is a common English word and the keyword of {known.relpath}, "
                    "so it was used as that embedding. If you meant the word, rename the file or turn off \"bare "
                    f"keywords trigger embeddings\" (then embedding:{known.keyword} uses the embedding).")
            continue
        hit = near.find(word)
        if hit is not None:
            entry, why = hit
            add("near-miss", word, f"'{word}' stays plain text; did you mean the embedding '{entry.keyword}' "
                f"({entry.relpath})? It {why}.")
    for name in explicit.references(tokens.text):
        entry = explicit.resolve(library, name)
        if entry is None:
            hit = near.find(name.rsplit("/", 1)[-1])
            hint = f"; did you mean embedding:{hit[0].keyword}?" if hit else ""
            add("not-found", name, f"'embedding:{name}' names no embedding file in the embeddings folders{hint}")
        else:
            _shadowed_warning(name, entry, library, family, add)


def _shadowed_warning(name: str, entry: Entry, library: Library, family: Family | None,
                      add: Callable[[str, str, str], None]) -> None:
    """``embedding:name`` names a file whose keyword another file holds (the keyword's own warnings cover the
    holder): a duplicate means the holder; a file that cannot be used is named with the reason."""
    holder = library.get(entry.keyword)
    if holder is None or holder is entry:
        return
    if entry.status is Status.DUPLICATE:
        add("duplicate", name, f"'embedding:{name}' is {entry.relpath}, a duplicate: {entry.reason}.")
    elif not _usable(entry, family):
        kind, reason = why_unusable(entry, family)
        what = "could not be loaded" if kind == "failed" else "does not fit this model"
        add(kind, name, f"'embedding:{name}' names {entry.relpath}, which {what} ({reason}); the keyword "
            f"'{entry.keyword}' belongs to {holder.relpath}.")


def _usable(entry: Entry, family: Family | None) -> bool:
    return entry.status is Status.LOADED and (family is None or entry.family is family)
