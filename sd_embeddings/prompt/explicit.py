"""ComfyUI's explicit embedding syntax, ``embedding:name``: accepted always, whatever the bare-keyword setting.

ComfyUI (``comfy/sd1_clip.py``) treats a prompt word that starts with ``embedding:`` as a file name looked up in
every embeddings folder and each of its sub-folders, as given or with ``.safetensors``/``.pt``/``.bin`` added;
weights work as for any word (``(embedding:name:1.2)``). So one file answers to several spellings: ``bad-hands-5``,
``bad-hands-5.pt``, ``neg/bad-hands-5`` and ``neg/bad-hands-5.pt`` for ``neg/bad-hands-5.pt``. ``names_for`` lists
them (plus the keyword itself, which differs from the file name for a picture carrying an embedding); the keyword
index registers the token ids of ``embedding:<each>``, so a match is on token ids exactly like a bare keyword, the
``embedding:`` part is consumed with the name, and the longest registered name still wins.

``references(text)`` finds the explicit references in prompt text (for the diagnostics), ``without_references``
is the text with them blanked out (the words left are bare), ``resolve`` says which entry a name means.
"""

from __future__ import annotations

import os
import re
import weakref

from ..library import Library
from ..library.collisions import keyword_key
from ..records import Entry, Status

PREFIX = "embedding:"
_REFERENCE = re.compile(r"(?<![\w-])embedding:\s*([^\s,()\[\]{}|<>:]+)", re.IGNORECASE)
_EDGE_PUNCTUATION = ".!?;\"'`"


def spelling_parts(entry: Entry) -> list[tuple[str, ...]]:
    """``names_for`` as the parts each name is made of (keyword; stem, extension; folder, ``/``): a tokenizer can
    then build a name's ids from ids it already has (``keywords.SpellingIds``)."""
    folder, filename = entry.folder, entry.filename
    stem, ext = os.path.splitext(filename)
    where = (folder, "/") if folder else ()
    candidates = [(entry.keyword,), (stem,), (stem, ext), (*where, stem), (*where, stem, ext)]
    unique: dict[str, tuple[str, ...]] = {}
    for parts in candidates:
        parts = tuple(part for part in parts if part)
        if parts:
            unique.setdefault(keyword_key("".join(parts)), parts)
    return list(unique.values())


def names_for(entry: Entry) -> list[str]:
    """Every name ``embedding:<name>`` may use for ``entry``: its keyword, its file name and its path relative to
    the embeddings folder, each with and without the extension; no two equal ignoring case. (ComfyUI also finds
    ``a/b/c.pt`` as ``b/c``; such middle tails are left out: each name costs index entries.)"""
    return ["".join(parts) for parts in spelling_parts(entry)]


def references(text: str) -> list[str]:
    """The names of every ``embedding:name`` in ``text``, in order (trailing sentence punctuation dropped)."""
    found = []
    for match in _REFERENCE.finditer(text):
        name = match.group(1).strip(_EDGE_PUNCTUATION)
        if name:
            found.append(name)
    return found


def without_references(text: str) -> str:
    """``text`` with each ``embedding:name`` replaced by a space: what is left are bare words."""
    return _REFERENCE.sub(" ", text)


_TABLES: weakref.WeakKeyDictionary[Library, tuple[int, dict[str, Entry]]] = weakref.WeakKeyDictionary()


def resolve(library: Library, name: str) -> Entry | None:
    """The entry ``embedding:<name>`` means: the keyword's winner first, then any file answering to that name
    (a duplicate, a file that failed to load); None when no file does. Case and ``\\`` vs ``/`` do not matter."""
    version = library.version  # before the entries, as in keywords.indexes_for
    cached = _TABLES.get(library)
    if cached is None or cached[0] != version:
        table: dict[str, Entry] = {}
        ordered = sorted(library.entries, key=lambda e: (library.get(e.keyword) is not e,
                                                         e.status not in (Status.LOADED, Status.INCOMPATIBLE)))
        for entry in ordered:
            if not entry.is_plain_image:
                for alias in names_for(entry):
                    table.setdefault(keyword_key(alias), entry)
        cached = _TABLES[library] = (version, table)
    return cached[1].get(keyword_key(name.replace("\\", "/")))
