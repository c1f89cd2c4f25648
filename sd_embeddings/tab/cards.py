"""Library entries -> card view models, the JSON list the tab's script renders, and escaped HTML fragments.

Shared by both hosts: the standalone page (``app.py``) and the WebUI adapter. Everything that reaches HTML goes
through ``html.escape``; everything that reaches the browser as data goes out as JSON (``cards_payload``).

Public API (stable; the WebUI adapter calls it):

- ``CardModel``: one card (dataclass). ``card_id`` is ``"<root index>/<relative path>"`` and stays the same
  across rescans; ``target`` is ``"negative"``, ``"positive"`` or ``"focused"`` (the prompt box focused last).
- ``card_models(library, api=API_PREFIX) -> list[CardModel]``: every entry that is an embedding (loaded,
  incompatible or duplicate), in the library's order (keyword, case-insensitive).
- ``problem_rows(library) -> list[dict]``: broken files (``relpath``, ``status``, ``reason``, ``quiet``); plain
  pictures without embedding data are ``quiet`` (listed, not counted as problems).
- ``cards_payload(library, api=API_PREFIX) -> dict``: the JSON-able document the script fetches (see ``FIELDS``).
- ``card_html(card, tabname) -> str``: one WebUI-compatible ``div.card`` (``data-name`` = keyword), for
  ``get-single-card`` style refreshes and the first paint.
- ``pane_html(library, tabname="txt2img", api=API_PREFIX, initial=48, watch_ms=0, auto_negative=True,
  hidden_models="When searched", sort="name", sort_dir="asc") -> str``: the whole tab (controls with the WebUI
  ids ``{T}_extra_search``, ``{T}_extra_sort_dir``, ``{T}_extra_refresh``, the cards container ``{T}_cards``,
  the folder tree, the problems list), with ``T = f"{tabname}_textual_inversion"``.
  ``javascript/textual_inversion.js`` takes over from there; ``watch_ms`` > 0 makes it poll for changes.
  ``sort`` is one of ``SORT_KEYS``, ``sort_dir`` ``asc``/``desc`` (the initial order).
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

import html
import os
import urllib.parse
from dataclasses import asdict, dataclass, field

from ..library import Library
from ..records import Entry, Status

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
    except (TypeError, ValueError):
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
    query = urllib.parse.urlencode({"root": root, "path": rel, "v": stamp // 1_000_000})
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
        card_id=card_id(library, entry), keyword=entry.keyword, relpath=entry.relpath, folder=entry.folder,
        format=entry.format, family=entry.family.label, vectors=entry.vectors, size=entry.size,
        mtime=entry.mtime_ns // 1_000_000_000, status=entry.status.value, reason=entry.reason,
        description=description[:DESCRIPTION_LIMIT], shorthash=entry.shorthash or "",
        preview=preview_url(library, entry, api), target=target, target_source=source,
        weight=prompt_weight(metadata), collides_with=[_shown_path(library, p) for p in entry.collides_with],
        hidden=is_hidden(entry.relpath))


def card_models(library: Library, api: str = API_PREFIX, auto_negative: bool = True) -> list[CardModel]:
    return [card_model(library, e, api, auto_negative) for e in library.entries if e.status in CARD_STATUSES]


def problem_rows(library: Library) -> list[dict]:
    return [{"relpath": e.relpath, "status": e.status.value, "reason": e.reason,
             "quiet": e.format == "image" and e.status is Status.NOT_AN_EMBEDDING}
            for e in library.entries if e.status.is_problem]


def folder_list(library: Library) -> list[str]:
    """Every sub-folder that holds an entry, with its parents, sorted (``""`` is the root)."""
    found = {""}
    for entry in library.entries:
        parts = entry.folder.split("/") if entry.folder else []
        found.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return sorted(found, key=lambda f: f.casefold())


def cards_payload(library: Library, api: str = API_PREFIX, auto_negative: bool = True) -> dict:
    """``{version, family, folders, roots, fields, cards: [[...row...]], problems}``: what the script fetches."""
    cards = card_models(library, api, auto_negative)
    return {"version": library.version, "family": library.family.value if library.family else "",
            "roots": list(library.folders), "folders": folder_list(library), "fields": list(FIELDS),
            "cards": [list(asdict(card).values()) for card in cards], "problems": problem_rows(library)}


def placeholder_letter(keyword: str) -> str:
    """The big letter on a card without a preview: the first letter or digit of the keyword."""
    return next((c for c in keyword if c.isalnum()), "?").upper()


def placeholder_hue(keyword: str) -> int:
    """A stable colour per keyword (same formula in the script: sum of UTF-16 code units)."""
    units = keyword.encode("utf-16-le")
    return sum(int.from_bytes(units[i:i + 2], "little") for i in range(0, len(units), 2)) * 37 % 360


def _attr(value: object) -> str:
    return html.escape(str(value), quote=True)


def card_html(card: CardModel, tabname: str = "txt2img", index: int = 0) -> str:
    """One card, markup compatible with the WebUI's ``div.card`` (themes, ``data-name`` lookups)."""
    e = html.escape
    classes = ["card", "sdemb-card"] + ([] if card.usable else ["sdemb-unusable"])
    if card.collides_with:
        classes.append("sdemb-collision")
    hover = f"{card.relpath}\nsha256 {card.shorthash or '(not computed yet)'}"
    hue, letter = placeholder_hue(card.keyword), e(placeholder_letter(card.keyword))
    picture = (f'<img class="preview sdemb-preview" src="{_attr(card.preview)}" alt="" loading="lazy">'
               if card.preview else
               f'<div class="sdemb-placeholder" style="--sdemb-hue:{hue}" aria-hidden="true">{letter}</div>')
    badges = [f'<span class="sdemb-badge sdemb-family-{_attr(card.family.lower())}">{e(card.family)}</span>',
              f'<span class="sdemb-badge">{card.vectors}v</span>']
    if card.target == "negative":
        badges.append('<span class="sdemb-badge sdemb-neg">neg</span>')
    if card.weight is not None:
        badges.append(f'<span class="sdemb-badge">&times;{card.weight:g}</span>')
    notes = []
    if card.reason:
        notes.append(f'<span class="sdemb-reason">{e(card.reason)}</span>')
    if card.collides_with:
        notes.append(f'<span class="sdemb-clash">same keyword: {e(", ".join(card.collides_with))}</span>')
    return (f'<div class="{" ".join(classes)}" tabindex="0" role="button" data-name="{_attr(card.keyword)}" '
            f'data-id="{_attr(card.card_id)}" data-sort-default="{index}" title="{_attr(hover)}">{picture}'
            f'<div class="button-row"><button type="button" class="sdemb-edit" title="Edit metadata" '
            f'aria-label="Edit metadata">&#9998;</button></div>'
            f'<div class="sdemb-badges">{"".join(badges)}</div>'
            f'<div class="actions"><div class="additional"><span class="hidden search_terms">'
            f'{e(card.relpath)} {e(card.description)}</span></div>'
            f'<span class="name">{e(card.keyword)}</span>'
            f'<span class="sdemb-folder">{e(card.folder)}</span>{"".join(notes)}'
            f'<span class="description">{e(card.description)}</span></div></div>')


def _problems_html(library: Library) -> str:
    rows = problem_rows(library)
    loud = [r for r in rows if not r["quiet"]]
    items = "".join(f'<li class="{"sdemb-quiet" if r["quiet"] else ""}"><code>{html.escape(r["relpath"])}</code> '
                    f'<b>{html.escape(r["status"])}</b>: {html.escape(r["reason"])}</li>' for r in rows)
    summary = f"{len(loud)} file(s) could not be used" if loud else f"{len(rows)} picture(s) without embedding data"
    return f"<details><summary>{summary}</summary><ul>{items}</ul></details>" if rows else ""


def empty_html(folders: list[str]) -> str:
    where = "".join(f"<li><code>{html.escape(f)}</code></li>" for f in folders)
    return ('<div class="sdemb-empty"><p><b>No embeddings here yet.</b></p><p>Drop Textual Inversion files '
            '(<code>.safetensors</code>, <code>.pt</code>, <code>.bin</code>, or embedding <code>.png</code>/'
            f'<code>.webp</code> pictures) into:</p><ul>{where}</ul><p>Sub-folders are fine; a picture named like '
            'the file (<code>name.preview.png</code>) becomes its preview. Then press Refresh. For a first look, '
            '<code>python -m sd_embeddings samples DIR</code> writes a few small samples.</p></div>')


def _first_cards(library: Library, tabname: str, api: str, initial: int, auto_negative: bool,
                 hidden_models: str) -> str:
    """The cards painted before the script's fetch (library order; hidden ones only with ``Always``)."""
    shown = [e for e in library.entries if e.status in CARD_STATUSES
             and (hidden_models == "Always" or not is_hidden(e.relpath))][:initial]
    return "".join(card_html(card_model(library, e, api, auto_negative), tabname, i) for i, e in enumerate(shown))


def pane_html(library: Library, tabname: str = "txt2img", api: str = API_PREFIX, initial: int = 48,
              watch_ms: int = 0, auto_negative: bool = True, hidden_models: str = HIDDEN_DEFAULT,
              sort: str = "name", sort_dir: str = "asc") -> str:
    """The whole tab; the first ``initial`` cards are rendered here so they show before the script's fetch."""
    t = f"{tabname}_textual_inversion"
    hidden_models = hidden_models if hidden_models in HIDDEN_MODES else HIDDEN_DEFAULT
    sort = sort if sort in SORT_KEYS else "name"
    descending = sort_dir == "desc"
    first = _first_cards(library, tabname, api, initial, auto_negative, hidden_models)
    if not library.entries:
        first = empty_html(list(library.folders))
    sorts = "".join(f'<option value="{k}"{" selected" if k == sort else ""}>{label}</option>' for k, label in SORTS)
    families = "".join(f'<option value="{k}">{label}</option>' for k, label in
                       (("", "All models"), ("usable", "Usable now"), ("SD1", "SD1"), ("SD2", "SD2"),
                        ("SDXL", "SDXL")))
    return (
        f'<div id="{t}_pane" class="sdemb-pane" data-tab="{_attr(tabname)}" data-t="{t}" data-api="{_attr(api)}" '
        f'data-watch="{int(watch_ms)}" data-hidden-models="{_attr(hidden_models)}">'
        f'<div id="{t}_controls" class="sdemb-controls">'
        f'<input type="search" id="{t}_extra_search" class="sdemb-search" placeholder="Search keyword, folder, '
        f'description" aria-label="Search embeddings">'
        f'<select id="{t}_extra_sort" class="sdemb-sort" aria-label="Sort by">{sorts}</select>'
        f'<button type="button" id="{t}_extra_sort_dir" class="sdemb-sort-dir" '
        f'data-sortdir="{"Descending" if descending else "Ascending"}" data-dir="{"desc" if descending else "asc"}" '
        f'title="Ascending / descending">{"&#8595;" if descending else "&#8593;"}</button>'
        f'<select id="{t}_extra_family" class="sdemb-family" aria-label="Model family">{families}</select>'
        f'<button type="button" id="{t}_extra_tree_view" class="sdemb-tree-toggle" title="Show or hide folders">'
        f'Folders</button>'
        f'<button type="button" id="{t}_extra_refresh" class="sdemb-refresh" title="Rescan the folders">'
        f'Refresh</button><span class="sdemb-count" aria-live="polite"></span></div>'
        f'<div class="sdemb-body"><nav id="{t}_tree" class="sdemb-tree" aria-label="Folders"></nav>'
        f'<div id="{t}_cards" class="extra-network-cards sdemb-cards">{first}</div></div>'
        f'<div id="{t}_problems" class="sdemb-problems">{_problems_html(library)}</div></div>')
