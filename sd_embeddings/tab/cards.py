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
- ``cards_payload(library, api=API_PREFIX) -> dict``: the JSON-able document the script fetches (see ``FIELDS``).
- ``first_page_payload(library, ..., hidden_models, sort, sort_dir)``: the document the page carries inline (the
  whole one for small libraries, else the first ``FIRST_PAGE`` cards in the order the user will see).
  ``sort`` is one of ``SORT_KEYS``, ``sort_dir`` ``asc``/``desc``; ``view_order`` is that order.
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
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from ..library import Library
from ..library.common_words import is_common_word
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
    common_word: bool = False
    """The keyword is a common English word (``library.common_words``): the card gets a warning badge."""

    @property
    def usable(self) -> bool:
        return self.status == Status.LOADED.value

    @property
    def search_text(self) -> str:
        return " ".join((self.keyword, self.relpath, self.description)).casefold()


FIELDS = tuple(f for f in CardModel.__dataclass_fields__)
"""Column order of ``cards_payload()["cards"]`` rows."""


def is_hidden(relpath: str) -> bool:
    """True when the file or a folder on its (``/``-separated) relative path starts with ``.``."""
    return any(part.startswith(".") for part in relpath.split("/"))


def card_id(library: Library, entry: Entry) -> str:
    root = library.folders.index(entry.root) if entry.root in library.folders else 0
    return f"{root}/{entry.relpath}"


def preview_url(library: Library, entry: Entry, api: str = API_PREFIX) -> str:
    name = entry.sidecars.preview
    if not name:
        return ""
    rel = f"{entry.folder}/{name}" if entry.folder else name
    root = library.folders.index(entry.root) if entry.root in library.folders else 0
    try:  # the picture's own time, so a replaced preview gets a new URL (previews are cached for an hour)
        stamp = os.stat(os.path.join(entry.root, *rel.split("/"))).st_mtime_ns
    except OSError:
        stamp = entry.mtime_ns
    query = urllib.parse.urlencode({"root": root, "path": shown(rel), "v": stamp // 1_000_000})
    return f"{api}/preview?{query}"


def _shown_path(library: Library, path: str) -> str:
    other = library.find(path)
    return other.relpath if other else os.path.basename(path)


def card_model(library: Library, entry: Entry, api: str = API_PREFIX, auto_negative: bool = True) -> CardModel:
    metadata = library.user_metadata(entry) if entry.sidecars.metadata_file else {}
    description = library.description(entry) if (entry.sidecars.metadata_file or
                                                  entry.sidecars.description_file) else ""
    target, source = resolve_target(entry.keyword, entry.folder, metadata, auto_negative)
    return CardModel(
        card_id=shown(card_id(library, entry)), keyword=shown(entry.keyword), relpath=shown(entry.relpath),
        folder=shown(entry.folder),
        format=entry.format, family=entry.family.label, vectors=entry.vectors, size=entry.size,
        mtime=entry.mtime_ns // 1_000_000_000, status=entry.status.value, reason=shown(entry.reason),
        description=description[:DESCRIPTION_LIMIT], shorthash=entry.shorthash or "",
        preview=preview_url(library, entry, api), target=target, target_source=source,
        weight=prompt_weight(metadata), collides_with=[shown(_shown_path(library, p)) for p in entry.collides_with],
        hidden=is_hidden(entry.relpath), common_word=is_common_word(entry.keyword))


def card_models(library: Library, api: str = API_PREFIX, auto_negative: bool = True) -> list[CardModel]:
    return [card_model(library, e, api, auto_negative) for e in library.entries if e.status in CARD_STATUSES]


def problem_rows(library: Library) -> list[dict]:
    return [{"relpath": shown(e.relpath), "status": e.status.value, "reason": shown(e.reason),
             "quiet": e.format == "image" and e.status is Status.NOT_AN_EMBEDDING}
            for e in library.entries if e.status.is_problem]


def folder_list(library: Library) -> list[str]:
    """Every sub-folder that holds an entry, with its parents, sorted (``""`` is the root)."""
    found = {""}
    for entry in library.entries:
        parts = entry.folder.split("/") if entry.folder else []
        found.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return sorted((shown(f) for f in found), key=lambda f: f.casefold())


def _document(library: Library, rows: list[list], auto_negative: bool) -> dict:
    from .groups import groups_payload  # groups use this module's card rules

    return {"version": library.version, "family": library.family.value if library.family else "",
            "roots": list(library.folders), "folders": folder_list(library), "fields": list(FIELDS),
            "cards": rows, "problems": problem_rows(library), "groups": groups_payload(library, auto_negative)}


def cards_payload(library: Library, api: str = API_PREFIX, auto_negative: bool = True) -> dict:
    """``{version, family, folders, roots, fields, cards: [[...row...]], problems, groups}``: what the script
    fetches (``groups``: ``groups.groups_payload``)."""
    rows = [list(asdict(card).values()) for card in card_models(library, api, auto_negative)]
    return _document(library, rows, auto_negative)


def _path_key(relpath: str) -> bytes:
    # the script compares lower-cased paths by UTF-16 code units; big-endian UTF-16 bytes sort the same way
    return relpath.lower().encode("utf-16-be", "surrogatepass")


_SORT_VALUES = {"path": lambda card: _path_key(card.relpath), "mtime": lambda card: card.mtime,
                "size": lambda card: card.size, "vectors": lambda card: card.vectors}
_ENTRY_SORT_VALUES = {"path": lambda entry: _path_key(shown(entry.relpath)),
                      "mtime": lambda entry: entry.mtime_ns // 1_000_000_000,
                      "size": lambda entry: entry.size, "vectors": lambda entry: entry.vectors}
"""The same values as ``_SORT_VALUES`` read from entries, so the first page is ordered before any card is built."""


def _ordered(items: list, value: Callable | None, sort_dir: str) -> list:
    indexed = list(enumerate(items))
    if value is not None:
        indexed.sort(key=lambda pair: (value(pair[1]), pair[0]))
    ordered = [item for _, item in indexed]
    return ordered[::-1] if sort_dir == "desc" else ordered


def view_order(models: list[CardModel], sort: str, sort_dir: str) -> list[CardModel]:
    """``models`` (library order) in the order the script shows them: its ``compute`` sorts the same way.

    ``name`` keeps the library order; ``path`` compares lower-cased relative paths; the others are numbers; ties
    keep the library order; ``desc`` reverses the whole list (ties included), as ``Array.reverse`` does.
    """
    return _ordered(models, _SORT_VALUES.get(sort), sort_dir)


def _count_folders(folders: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for folder in folders:
        parts = folder.split("/") if folder else []
        for depth in range(len(parts) + 1):
            key = "/".join(parts[:depth])
            counts[key] = counts.get(key, 0) + 1
    return counts


def folder_counts(models: list[CardModel]) -> dict[str, int]:
    """Cards per folder, sub-folders included (``""`` = all): the numbers in the folder tree."""
    return _count_folders(card.folder for card in models)


def first_page_payload(library: Library, api: str = API_PREFIX, auto_negative: bool = True,
                       hidden_models: str = HIDDEN_DEFAULT, sort: str = "name", sort_dir: str = "asc",
                       size: int = FIRST_PAGE) -> dict:
    """The cards document the page carries inline, so the first paint needs no request.

    Up to ``size`` cards it is the whole ``cards_payload`` with ``complete: true`` (the script sorts and filters it
    itself). Beyond that, ``cards`` holds only the first ``size`` rows the user will see (hidden cards left out
    unless ``hidden_models`` is ``Always``, in the ``sort``/``sort_dir`` order), with ``complete: false``,
    ``total`` (all cards) and ``counts`` (``folder_counts`` of the shown cards) for the tree and the "N of M"
    count; the script then fetches the whole document. Only those ``size`` cards are built (their sidecars read):
    the order and the counts come from the entries.
    """
    entries = [entry for entry in library.entries if entry.status in CARD_STATUSES]
    if len(entries) <= size:
        return {**cards_payload(library, api, auto_negative), "complete": True}
    visible = [entry for entry in entries if hidden_models == "Always" or not is_hidden(entry.relpath)]
    first = _ordered(visible, _ENTRY_SORT_VALUES.get(sort), sort_dir)[:size]
    rows = [list(asdict(card_model(library, entry, api, auto_negative)).values()) for entry in first]
    return {**_document(library, rows, auto_negative), "complete": False, "total": len(entries),
            "counts": _count_folders(shown(entry.folder) for entry in visible)}
