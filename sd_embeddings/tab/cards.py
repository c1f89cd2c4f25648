"""Library entries -> card view models and the JSON documents the tab's script renders.

Shared by both hosts: the standalone page (``app.py``) and the WebUI adapter. This module holds data only; the
script (``javascript/*.js``, ``shell.SCRIPTS``) is the one renderer of cards, and ``shell.py`` writes the page shell
that carries the first document inline.

Public API (stable; the WebUI adapter calls it):

- ``CardModel``: one card (dataclass). ``card_id`` is ``"<root index>/<relative path>"`` and stays the same
  across rescans; ``target`` is ``"negative"``, ``"positive"`` or ``"focused"`` (the prompt box focused last).
- ``card_models(library, api=API_PREFIX) -> list[CardModel]``: every entry that is an embedding (loaded,
  incompatible or duplicate), in the library's order (keyword, case-insensitive).
- ``problem_rows(library) -> list[dict]``: broken files (``relpath``, ``status``, ``reason``, ``quiet``); plain
  pictures without embedding data are ``quiet`` (listed, not counted as problems).
- ``cards_payload(library, api=API_PREFIX) -> dict``: the whole cards document in one page; the script fetches it
  in pages (``card_pages``: built once per library state), its cards as compact rows (``card_rows``, whose
  ``expand`` reads them back as ``CardModel`` dicts).
- ``first_page.first_page_payload(library, ..., hidden_models, sort, sort_dir)``: the document the page carries
  inline (the whole one for small libraries, else the first ``FIRST_PAGE`` cards in the order the user will see).
  ``sort`` is one of ``SORT_KEYS``, ``sort_dir`` ``asc``/``desc``; ``first_page.view_order`` is that order.
- Hidden entries (``CardModel.hidden``): a file or any folder on its path starts with ``.``. ``hidden_models``
  (``HIDDEN_MODES``, the WebUI's ``extra_networks_hidden_models``) decides: ``Always`` shown, ``When searched``
  only while the search text has at least ``HIDDEN_MIN_SEARCH`` characters, ``Never`` not shown.
- ``is_known_negative(keyword, folder) -> bool`` and ``resolve_target(keyword, folder, metadata)``: the rule
  below. ``prompt_weight(metadata) -> float | None``: the ``"preferred weight"`` user setting.

Negative rule (documented in the README): a card goes to the negative prompt when its user metadata says
``"target": "negative"``, or, with no choice stored (``"auto"``), when it looks like a negative embedding: a folder on
its path is called ``negative``, ``negatives`` or ``neg``; or its keyword contains ``negative``; ends in ``-neg``,
``_neg`` or `` neg``; starts with ``neg_``/``neg-``; or starts with a well-known negative's name (``bad-hands``,
``badhandv``, ``bad_prompt``, ``baddream``, ``unrealisticdream``, ``bad-artist``, ``bad-image``, ``verybad``,
``unaestheticxl``, ...). ``"target": "positive"`` pins a card to the positive prompt.

User metadata (``x.json`` beside the file, the WebUI's format): ``description`` and ``notes`` as the WebUI writes
them, plus ``"target"`` (``auto``/``positive``/``negative``) and ``"preferred weight"`` (a number; 0 or absent =
plain keyword), the key Lora cards use for the same idea.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..library import Library
from ..records import Entry, Status
from .names import shown

API_PREFIX = "./sd-embeddings/v1"
CARD_STATUSES = (Status.LOADED, Status.INCOMPATIBLE, Status.DUPLICATE)
NEGATIVE_FOLDERS = frozenset({"negative", "negatives", "neg"})
NEGATIVE_PREFIXES = ("bad-hands", "bad_hands", "badhandv", "bad-picture", "bad_prompt", "bad-prompt", "baddream",
                     "unrealisticdream", "bad-artist", "bad_artist", "bad-image", "bad_image", "verybad",
                     "unaestheticxl", "deepnegative", "ng_deep", "easyneg", "fastneg")
TARGETS = ("auto", "positive", "negative")
DESCRIPTION_LIMIT = 400
SORTS = (("name", "Name"), ("path", "Path"), ("mtime", "Date modified"), ("size", "Size"), ("vectors", "Vectors"))
SORT_KEYS = tuple(key for key, _ in SORTS)
SORT_DIRS = ("asc", "desc")
HIDDEN_MODES = ("Always", "When searched", "Never")
HIDDEN_DEFAULT = "When searched"
HIDDEN_MIN_SEARCH = 4
FIRST_PAGE = 60
"""Cards in the inline first page: the script renders this many at a time (``CHUNK``)."""


def is_known_negative(keyword: str, folder: str = "") -> bool:
    """True for embeddings that belong in the negative prompt by name or folder (see the module docstring)."""
    parts = [part.casefold() for part in folder.replace("\\", "/").split("/") if part]
    if any(part in NEGATIVE_FOLDERS for part in parts):
        return True
    name = keyword.casefold()
    return ("negative" in name or name.endswith(("-neg", "_neg", " neg")) or name.startswith(("neg_", "neg-"))
            or name.startswith(NEGATIVE_PREFIXES))


def resolve_target(keyword: str, folder: str, metadata: dict, auto_negative: bool = True) -> tuple[str, str]:
    """``(target, source)``: target ``negative``/``positive``/``focused``; source ``user`` or ``auto``.

    ``auto_negative=False`` (a WebUI setting) turns the name/folder rule off: only the user's choice counts.
    """
    chosen = metadata.get("target")
    if chosen in ("positive", "negative"):
        return chosen, "user"
    negative = auto_negative and is_known_negative(keyword, folder)
    return ("negative" if negative else "focused"), "auto"


def prompt_weight(metadata: dict) -> float | None:
    """The user's preferred weight, or None when unset, zero, 1 or not a finite number."""
    value = metadata.get("preferred weight")
    try:
        weight = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a stranger's x.json with a 400-digit int
        return None
    if weight != weight or weight in (0.0, 1.0) or abs(weight) > 100:
        return None
    return round(weight, 3)


@dataclass
class CardModel:
    card_id: str
    keyword: str
    relpath: str
    folder: str
    format: str
    family: str
    vectors: int
    size: int
    mtime: int
    status: str
    reason: str
    description: str
    shorthash: str
    preview: str
    target: str
    target_source: str
    weight: float | None
    collides_with: list[str] = field(default_factory=list)
    hidden: bool = False
    base_model: str = ""
    """The base model a Civitai sidecar names when it says more than the family (``SD 1.5``, ``Pony``)."""
    same_vectors: list[str] = field(default_factory=list)
    """Other files holding the very same vectors (``library.vectors.fingerprint``), by relative path."""
    common_word: bool = False
    """The keyword is a common English word (``library.common_words``): the card gets a warning badge."""

    @property
    def usable(self) -> bool:
        return self.status == Status.LOADED.value

    @property
    def search_text(self) -> str:
        return " ".join((self.keyword, self.relpath, self.description)).casefold()


FIELDS = tuple(f for f in CardModel.__dataclass_fields__)
"""A card's fields, as the metadata routes answer it (``asdict``) and ``card_rows.expand`` reads rows back."""


def is_hidden(relpath: str) -> bool:
    """True when the file or a folder on its (``/``-separated) relative path starts with ``.``."""
    return any(part.startswith(".") for part in relpath.split("/"))


def card_id(library: Library, entry: Entry) -> str:
    root = library.folders.index(entry.root) if entry.root in library.folders else 0
    return f"{root}/{entry.relpath}"


def shown_path(library: Library, path: str) -> str:
    """A colliding file as the card names it: its relative path when it is in the library."""
    other = library.find(path)
    return other.relpath if other else os.path.basename(path)


def twins_index(library: Library) -> dict[str, list[Entry]]:
    """Card entries by vector fingerprint, for fingerprints more than one file has (``same_vectors``)."""
    groups: dict[str, list[Entry]] = {}
    for entry in library.entries:
        if entry.fingerprint and entry.status in CARD_STATUSES:
            groups.setdefault(entry.fingerprint, []).append(entry)
    return {key: group for key, group in groups.items() if len(group) > 1}


def same_vectors(library: Library, entry: Entry, index: dict[str, list[Entry]] | None = None) -> list[str]:
    """Relative paths of the other files with ``entry``'s vectors (known once both were decoded)."""
    group = (index if index is not None else twins_index(library)).get(entry.fingerprint or "", [])
    return [shown(other.relpath) for other in group if other.path != entry.path]


def card_model(library: Library, entry: Entry, api: str = API_PREFIX, auto_negative: bool = True,
               twins: dict[str, list[Entry]] | None = None) -> CardModel:
    from . import card_rows  # rows are written with this module's rules

    writer = card_rows.RowWriter(library, auto_negative, twins=twins)
    row = writer.row(entry)
    return card_rows.card(row, writer.strings, writer.folders, api)


def card_models(library: Library, api: str = API_PREFIX, auto_negative: bool = True) -> list[CardModel]:
    twins = twins_index(library)
    return [card_model(library, e, api, auto_negative, twins) for e in library.entries if e.status in CARD_STATUSES]


def problem_rows(library: Library, entries: Sequence[Entry] | None = None) -> list[dict]:
    """Broken files, then sub-folders the scan did not walk (a link leading outside, the scan's caps).
    ``entries``: the library's entries as read once by the caller (default: now)."""
    return [{"relpath": shown(e.relpath), "status": e.status.value, "reason": shown(e.reason),
             "quiet": e.format == "image" and e.status is Status.NOT_AN_EMBEDDING}
            for e in (library.entries if entries is None else entries) if e.status.is_problem] + [
        {"relpath": shown(s.relpath) + "/", "status": "skipped", "reason": shown(s.reason), "quiet": False}
        for s in library.skipped]


def folder_list(library: Library, entries: Sequence[Entry] | None = None) -> list[str]:
    """Every sub-folder that holds an entry, with its parents, sorted, each once as shown (``""`` is the root)."""
    found = {""}
    for folder in {entry.folder for entry in (library.entries if entries is None else entries)}:
        parts = folder.split("/") if folder else []
        found.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return sorted({shown(f) for f in found}, key=lambda f: (f.casefold(), f))


def root_labels(folders: Sequence[str]) -> list[str]:
    """The embeddings folders as the page names them: each folder's own name, with as many parent names as it
    takes to tell them apart, never the absolute path (which names the user's account and disk to every reader)."""
    parts = [[shown(part) for part in os.path.normpath(str(folder)).split(os.sep) if part] or ["/"]
             for folder in folders]
    depth = 1
    while depth < max((len(p) for p in parts), default=1) and \
            len({tuple(p[-depth:]) for p in parts}) < len(parts):
        depth += 1
    return ["/".join(p[-depth:]) for p in parts]


def cards_payload(library: Library, api: str = API_PREFIX, auto_negative: bool = True) -> dict:
    """The whole cards document in one page (``card_pages.document``): what ``/cards`` answers for a library of
    up to ``card_pages.PAGE`` cards; ``card_rows.expand`` reads its cards back."""
    from . import card_pages

    return card_pages.whole_document(library, auto_negative)
