"""Cards as compact rows: what the tab's script decodes (``expand`` in ``javascript/sd_embeddings_2_render.js``).

A cards document (a page of ``/cards``, or the first page the shell carries inline) holds ``fields``
(``ROW_FIELDS``), ``strings`` (the short texts many cards share, each written once) and ``cards``: one list per
card, its values in ``fields`` order. A ``cards.CardModel`` is written as:

- ``root``: its embeddings folder's index (the card id is ``"<root>/<relpath>"``); ``folder``: the index of its
  folder in the document's ``folders`` (carried by page 0 and the inline document); ``file``: its file name (the
  relative path is ``folder/file``, or ``file`` at the top);
- ``keyword``: ``0`` when it is the file name up to its last ``.`` (``keyword_stem``), else the text;
- ``format``, ``family``, ``status``, ``reason``, ``target``, ``target_source``, ``base_model`` (``SHARED``):
  indexes into ``strings``;
- ``preview``: ``0`` (none) or ``[picture file name, stamp]``; the link is ``preview_link(api, root, folder, name,
  stamp)``, relative to the page like every route;
- ``weight``: ``0`` when unset; ``hidden``, ``common_word``: ``0``/``1``; ``collides_with``, ``same_vectors``:
  ``0`` when empty, else lists of relative paths;
- ``vectors``, ``size``, ``mtime`` (seconds), ``description``, ``shorthash``: as in ``CardModel``.

``RowWriter(library, auto_negative, folders, twins)`` writes rows (``row(entry)``) and collects the document's
``strings`` and ``folders``; ``card(row, strings, folders, api)`` reads a row back as the ``CardModel``;
``expand(document, folders, api)`` reads a whole document as dicts, as the script does in the browser.
``cards.card_model`` is ``card`` of a ``row``: one set of rules for every card the server sends.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Sequence
from dataclasses import asdict

from ..library import Library
from ..library.common_words import is_common_word
from ..records import Entry
from . import cards
from .names import shown

ROW_FIELDS = ("root", "folder", "file", "keyword", "format", "family", "vectors", "size", "mtime", "status",
              "reason", "description", "shorthash", "preview", "target", "target_source", "weight",
              "collides_with", "hidden", "base_model", "same_vectors", "common_word")
SHARED = ("format", "family", "status", "reason", "target", "target_source", "base_model")
_URI_SAFE = "!'()*"
"""With these, ``urllib.parse.quote`` writes exactly what the script's ``encodeURIComponent`` writes."""


def keyword_stem(file: str) -> str:
    """The file name up to its last ``.``: most files' keyword (``0`` in a row)."""
    dot = file.rfind(".")
    return file[:dot] if dot > 0 else file


def preview_link(api: str, root: int, folder: str, name: str, stamp: int) -> str:
    """The preview route's URL for a picture beside a card (``stamp``: its mtime in ms, so a new picture is a new
    URL; previews are cached for an hour)."""
    rel = f"{folder}/{name}" if folder else name
    return f"{api}/preview?root={root}&path={urllib.parse.quote(rel, safe=_URI_SAFE)}&v={stamp}"


def preview_ref(entry: Entry) -> list | int:
    """``[picture name, stamp]`` of the entry's preview, ``0`` when it has none."""
    name = entry.sidecars.preview
    if not name:
        return 0
    try:  # the picture's own time, so a replaced preview gets a new URL
        stamp = os.stat(os.path.join(os.path.dirname(entry.path), name)).st_mtime_ns
    except OSError:
        stamp = entry.mtime_ns
    return [shown(name), stamp // 1_000_000]


class RowWriter:
    """Rows of one document: its string table and folder indexes grow as rows are written."""

    def __init__(self, library: Library, auto_negative: bool = True, folders: Sequence[str] = (),
                 twins: dict[str, list[Entry]] | None = None) -> None:
        self.library = library
        self.auto_negative = auto_negative
        self.folders = list(folders)
        self._folder_index = {folder: index for index, folder in enumerate(self.folders)}
        self._roots = {root: index for index, root in enumerate(library.folders)}
        self._twins = twins
        self._strings: dict[str, int] = {}

    @property
    def strings(self) -> list[str]:
        return list(self._strings)

    def _text(self, value: str) -> int:
        return self._strings.setdefault(value, len(self._strings))

    def _folder(self, folder: str) -> int:
        index = self._folder_index.get(folder)
        if index is None:  # a single card's document: its folder alone
            index = self._folder_index[folder] = len(self.folders)
            self.folders.append(folder)
        return index

    def _same_vectors(self, entry: Entry) -> list[str] | int:
        if not entry.fingerprint:
            return 0
        if self._twins is None:
            self._twins = cards.twins_index(self.library)
        return cards.same_vectors(self.library, entry, self._twins) or 0

    def _collisions(self, entry: Entry) -> list[str] | int:
        return [shown(cards.shown_path(self.library, path)) for path in entry.collides_with] or 0

    def row(self, entry: Entry) -> list:
        library, sidecars, text = self.library, entry.sidecars, self._text
        metadata = library.user_metadata(entry) if sidecars.metadata_file else {}
        civitai = library.civitai_summary(entry, metadata) if (sidecars.civitai_file or metadata) else None
        description = library.description(entry, metadata, civitai) if (
            sidecars.metadata_file or sidecars.description_file or sidecars.civitai_file) else ""
        target, source = cards.resolve_target(entry.keyword, entry.folder, metadata, self.auto_negative)
        file, keyword = shown(entry.filename), shown(entry.keyword)
        return [
            self._roots.get(entry.root, 0), self._folder(shown(entry.folder)), file,
            0 if keyword == keyword_stem(file) else keyword, text(entry.format), text(entry.family.label),
            entry.vectors, entry.size, entry.mtime_ns // 1_000_000_000, text(entry.status.value),
            text(shown(entry.reason)), description[:cards.DESCRIPTION_LIMIT], entry.shorthash or "",
            preview_ref(entry), text(target), text(source), (cards.prompt_weight(metadata) if metadata else None) or 0,
            self._collisions(entry), int(cards.is_hidden(entry.relpath)),
            text(civitai.base_model if civitai and civitai.specific else ""), self._same_vectors(entry),
            int(is_common_word(entry.keyword))]


def card(row: Sequence, strings: Sequence[str], folders: Sequence[str], api: str = cards.API_PREFIX
         ) -> cards.CardModel:
    """The ``CardModel`` a row stands for (the script's ``expand`` reads rows the same way)."""
    values = dict(zip(ROW_FIELDS, row))
    for name in SHARED:
        values[name] = strings[values[name]]
    root, folder, file, preview = values["root"], folders[values["folder"]], values["file"], values["preview"]
    relpath = f"{folder}/{file}" if folder else file
    keyword = values["keyword"] if isinstance(values["keyword"], str) else keyword_stem(file)
    return cards.CardModel(
        card_id=f"{root}/{relpath}", keyword=keyword, relpath=relpath, folder=folder, format=values["format"],
        family=values["family"], vectors=values["vectors"], size=values["size"], mtime=values["mtime"],
        status=values["status"], reason=values["reason"], description=values["description"],
        shorthash=values["shorthash"], preview=preview_link(api, root, folder, *preview) if preview else "",
        target=values["target"], target_source=values["target_source"], weight=values["weight"] or None,
        collides_with=list(values["collides_with"] or []), hidden=bool(values["hidden"]),
        base_model=values["base_model"], same_vectors=list(values["same_vectors"] or []),
        common_word=bool(values["common_word"]))


def expand(document: dict, folders: Sequence[str] | None = None, api: str = cards.API_PREFIX) -> list[dict]:
    """Every card of a document as a dict of ``CardModel`` fields (``folders``: page 0's, for a later page)."""
    folders = document["folders"] if folders is None else folders
    return [asdict(card(row, document["strings"], folders, api)) for row in document["cards"]]
