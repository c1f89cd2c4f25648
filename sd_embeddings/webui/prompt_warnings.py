"""The core's prompt diagnostics (``diagnostics.warnings_for``) for a WebUI generation: one comment line each.

The same warnings as the standalone host and ``encode`` (incompatible, failed, near-miss, too-long), read from what
the WebUI encoded (``usage.LineRecord``: the line's token ids from its own chunks and the embeddings its fixes
placed), so no prompt is tokenized a second time:

* incompatible / failed: a keyword of such a file found in the line's ids (keyword ids from the model's tokenizer,
  as the WebUI registers names);
* too-long: an embedding placed with more vectors than a chunk holds;
* near-miss: the line's words compared with the usable keywords;
* explicit-only (bare keywords off): a usable keyword found alone in the line's ids; common-word and not-found come
  from the line's text, as on the host.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable

from ..formats.logs import get_logger
from ..library import Library
from ..library.bulk import gc_paused
from ..prompt.chunks import CHUNK_LENGTH, KeywordIndex, Notice, PromptTokens, unusable_entries, usable_entries
from ..prompt.diagnostics import PromptWarning, warnings_for
from ..records import Entry, Family
from .usage import LineRecord

logger = get_logger(__name__)

PREFIX = "Textual inversion: "


class KeywordIds:
    """A ``Tokenizer``-shaped view (``encode``) of the model's tokenizer, for keywords only."""

    def __init__(self, ids_of: Callable[[str], list[int]]) -> None:
        self.encode = ids_of


def line_for(warning: PromptWarning) -> str:
    if warning.kind != "too-long":
        return PREFIX + warning.message
    # the core spreads such an embedding over chunks; the WebUI's own chunker does not, so say what happens here
    return (f"{PREFIX}'{warning.word}' has more than the {CHUNK_LENGTH} vectors one chunk holds; the WebUI "
            "cannot place it in a prompt and this generation may fail or use it cut short.")


def notices_of(record: LineRecord, library: Library, unusable: KeywordIndex,
               plain: KeywordIndex | None = None) -> list[Notice]:
    """Too-long embeddings placed, unusable files' names in the ids, and (``plain``: bare keywords off) usable
    keywords typed alone, which stayed words."""
    notices = [Notice("too-long", entry) for entry in (getattr(e, "entry", None) for e in record.embeddings)
               if entry is not None and entry.vectors > CHUNK_LENGTH]
    for kind, index in (("unusable", unusable), ("bare", plain)):
        if index is None or not index.buckets:
            continue
        position = 0
        while position < len(record.ids):
            found = index.match(record.ids, position)
            if found is not None:
                notices.append(Notice(kind, found[0]))
            position += found[1] if found is not None else 1
    return notices


_INDEXES: weakref.WeakKeyDictionary[Library, tuple[tuple, int, list[Entry], KeywordIndex, KeywordIndex | None]] = \
    weakref.WeakKeyDictionary()
"""The last generation's keyword indexes per library, kept while they would come out the same. Building them took
about 0.15 s at 10,000 files, which every generation paid; a dropped file that works changes no unusable file."""


def keyword_indexes(library: Library, family: Family | None, keyword_ids: Callable[[str], list[int]],
                    bare_keywords: bool, model: object = None) -> tuple[KeywordIndex, KeywordIndex | None]:
    """The unusable files' keywords and (bare keywords off) the usable ones' bare keywords, by token ids."""
    version = library.version  # before the entries, as elsewhere: a refresh in between makes the key older
    key = (family, id(model), bare_keywords)
    cached = _INDEXES.get(library)
    if cached is not None and cached[0] == key and cached[1] == version:
        return cached[3], cached[4]  # the common case: nothing changed, not even a pass over the entries
    unusable_now = unusable_entries(library, family)
    # Entries are replaced, never changed, when their file or outcome changes; the cache holds the ones it indexed,
    # so the same objects in the same order mean the same index (the usable keywords' one needs the same version).
    if cached is not None and cached[0] == key and bare_keywords and len(cached[2]) == len(unusable_now) and \
            all(a is b for a, b in zip(cached[2], unusable_now)):
        _INDEXES[library] = (key, version, *cached[2:])
        return cached[3], cached[4]
    ids = KeywordIds(keyword_ids)
    with gc_paused():  # thousands of small objects in a WebUI's large heap: no collector passes meanwhile
        unusable = KeywordIndex(unusable_now, ids, bare_keywords)
        plain = None if bare_keywords else KeywordIndex(usable_entries(library, family), ids, explicit=False)
    _INDEXES[library] = (key, version, unusable_now, unusable, plain)
    return unusable, plain


def generation_warnings(library: Library, family: Family | None, records: Iterable[LineRecord],
                        keyword_ids: Callable[[str], list[int]], bare_keywords: bool = True,
                        model: object = None) -> list[str]:
    """One line per warning over every encoded line of a generation; never raises (a failure is logged).
    ``model``: the loaded model, whose tokenizer ``keyword_ids`` reads (a new one rebuilds the indexes)."""
    found: dict[str, None] = {}
    try:
        unusable, plain = keyword_indexes(library, family, keyword_ids, bare_keywords, model)
    except Exception:  # diagnostics must never stop a generation
        logger.exception("Textual inversion: could not index the keywords of unusable files")
        return []
    for record in records:
        try:
            tokens = PromptTokens(record.text, [], 0, notices_of(record, library, unusable, plain), bare_keywords)
            found.update(dict.fromkeys(line_for(w) for w in warnings_for(tokens, library, family)))
        except Exception:  # diagnostics must never stop a generation
            logger.exception("Textual inversion: could not check the prompt %r for embedding warnings",
                             record.text[:80])
    return list(found)
