"""The "Textual Inversion" extra-networks page, replacing the WebUI's built-in one (same title, same element ids).

The pane itself (cards with badges and reasons, folders, problems list, search/sort/refresh with the WebUI's ids
``{tab}_textual_inversion_extra_search`` etc.) is ``shell.pane_html`` (ids and the first cards document inline) drawn by
the script (``shell.SCRIPTS``).
This class keeps the WebUI's page contract so its machinery keeps working: ``create_item`` returns the WebUI's
item dict (``get-single-card`` and "Edit metadata" use it), ``list_items`` covers every usable or incompatible
embedding, ``refresh`` rescans, ``allowed_directories_for_previews`` lists every scanned folder. The pane is
rendered from the library, so it is filled before the model finishes loading. The WebUI's settings for hidden
entries (``extra_networks_hidden_models``) and the initial card order (``extra_networks_card_order_field``,
``extra_networks_card_order``) are read each time the pane is rendered (``settings.tab_options``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from ..formats.logs import get_logger
from ..library import sidecars
from ..records import Status
from . import settings

logger = get_logger(__name__)

TITLE = "Textual Inversion"
LISTED = (Status.LOADED, Status.INCOMPATIBLE)


def _create_item(page: Any, name: str, index: int | None) -> dict | None:
    """The WebUI's item dict for one listed embedding (``get-single-card`` and "Edit metadata" use it)."""
    from modules import shared
    from modules.ui_extra_networks import quote_js

    entry = page.get_db().ensure_scanned().library.get(name)
    if entry is None or entry.status not in LISTED:
        return None
    path = os.path.splitext(entry.path)[0]
    terms = [page.search_terms_from_path(entry.path)] + ([entry.sha256] if entry.sha256 else [])
    # the WebUI's own find_preview/find_description open any x.png/x.txt, links out included: ours stay inside
    preview = sidecars.sidecar_path(entry, entry.sidecars.preview)
    return {
        "name": entry.keyword, "filename": entry.path, "shorthash": entry.shorthash or "",
        "preview": page.link_preview(preview) if preview else None,
        "description": sidecars.text_description(entry) or None,
        "search_terms": terms, "prompt": quote_js(entry.keyword),
        "local_preview": f"{path}.preview.{shared.opts.samples_format}",
        "sort_keys": {"default": index if index is not None else 0, **page.get_sort_keys(entry.path)},
        "family": entry.family.value, "reason": entry.reason,
    }


def _read_user_metadata(page: Any, item: dict) -> None:
    """The WebUI's ``read_user_metadata`` contract (``user_metadata``, its ``description`` over the text file),
    read by the library inside the embeddings folder (the WebUI's reader follows an ``x.json`` link anywhere)."""
    entry = page.get_db().library.find(item.get("filename") or "")
    metadata = sidecars.user_metadata(entry) if entry is not None else {}
    if metadata.get("description") is not None:
        item["description"] = metadata["description"]
    item["user_metadata"] = metadata


def _list_items(page: Any) -> Iterator[dict]:
    entries = [e for e in page.get_db().ensure_scanned().library.entries if e.status in LISTED]
    for index, entry in enumerate(entries):
        item = page.create_item(entry.keyword, index)
        if item is not None:
            yield item


class LazyItems(MutableMapping):
    """``page.items`` built on use: the WebUI reads one item at a time (``get-single-card``, "Edit metadata"), so
    building all of them (previews, descriptions and user metadata read from disk, per tab) on every render cost
    seconds at 10,000 files. Iterating still gives every listed embedding, each made on first access."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self._made: dict[str, dict] = {}
        self._index = {entry.keyword: index for index, entry in enumerate(
            e for e in page.get_db().library.entries if e.status in LISTED)}

    def __getitem__(self, name: str) -> dict:
        item = self._made.get(name)
        if item is None:
            item = self.page.create_item(name, self._index.get(name)) if name in self._index else None
            if item is None:
                raise KeyError(name)
            self.page.read_user_metadata(item)
            self._made[name] = item
        return item

    def __setitem__(self, name: str, item: dict) -> None:
        self._made[name] = item
        self._index.setdefault(name, len(self._index))

    def __delitem__(self, name: str) -> None:
        self._made.pop(name, None)
        del self._index[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._index))

    def __len__(self) -> int:
        return len(self._index)


def _create_html(page: Any, tabname: str, empty: bool) -> str:
    """The pane. ``empty`` (the WebUI's placeholder while it builds the UI at start) never waits for the scan:
    it shows what the library holds now; the WebUI replaces it with the full render when the page loads."""
    from ..tab import guard, shell

    db = page.get_db() if empty else page.get_db().ensure_scanned()
    lister = getattr(page, "lister", None)  # the file-listing cache, from A1111 1.8 (1.7.0 has none)
    if lister is not None:
        lister.reset()
    page.items = LazyItems(page)
    return shell.pane_html(db.library, tabname, auto_negative=settings.auto_negative(),
                           token_html=guard.token_meta_html(), **settings.tab_options())


@functools.lru_cache(maxsize=2)
def page_class(base: type) -> type:
    """Our page as a subclass of ``modules.ui_extra_networks.ExtraNetworksPage`` (built on first use); the
    methods hand their work to the module's functions, so the class is only the WebUI's contract."""

    class TextualInversionPage(base):  # type: ignore[misc, valid-type]
        def __init__(self, get_db: Callable[[], Any]) -> None:
            super().__init__(TITLE)
            self.allow_negative_prompt = True
            self.get_db = get_db

        def refresh(self) -> None:
            self.get_db().load_textual_inversion_embeddings(force_reload=True)

        def create_item(self, name: str, index: int | None = None, enable_filter: bool = True) -> dict | None:
            return _create_item(self, name, index)

        def list_items(self) -> Iterator[dict]:
            return _list_items(self)

        def read_user_metadata(self, item: dict, use_cache: bool = True) -> None:
            _read_user_metadata(self, item)

        def allowed_directories_for_previews(self) -> list[str]:
            return list(self.get_db().library.folders)  # the roots: known without a scan

        def create_html(self, tabname: str, *, empty: bool = False) -> str:
            return _create_html(self, tabname, empty)

    return TextualInversionPage


def replace_builtin_page(get_db: Callable[[], Any]) -> Any:
    """``on_before_ui``: drop every page titled "Textual Inversion" and register ours in its place."""
    from modules import ui_extra_networks

    pages = ui_extra_networks.extra_pages
    position = next((i for i, p in enumerate(pages) if p.name == TITLE.lower()), len(pages))
    pages[:] = [p for p in pages if p.name != TITLE.lower()]
    page = page_class(ui_extra_networks.ExtraNetworksPage)(get_db)
    ui_extra_networks.register_page(page)  # appends and recomputes allowed_dirs
    pages.insert(position, pages.pop())  # keep the built-in page's place in the tab order
    return page
