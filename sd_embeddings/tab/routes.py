"""HTTP routes of the Textual Inversion tab, shared by the standalone host and the WebUI adapter.

``make_router(get_library) -> fastapi.APIRouter`` with prefix ``/sd-embeddings/v1`` (``ROUTE_PREFIX``):

- ``GET  /cards?page=N&build=B`` -> ``card_pages.answer``: page N of the card list as compact JSON rows
  (``card_rows``; page 0 with the folders, problems and groups), built once per library state and sent gzipped
  to clients that accept it.
- ``GET  /version``   -> ``{"version": n}``: cheap; the script polls it to notice rescans and family switches.
- ``POST /refresh``   -> rescan (only changed files are read), then page 0 of ``/cards``, built anew.
- ``GET  /preview?root=<i>&path=<relative>`` -> a preview picture. Only a file that is the preview (or the
  picture itself) of a known entry, inside that entry's embeddings folder after resolving symlinks, with a
  picture extension, whose bytes sniff as a picture (``preview_serving``: sniffed type, ``nosniff``, sandboxing
  CSP). ``..``, absolute paths, backslashes, NUL, encoded traversal, links leading out, SVG/HTML behind a picture
  name, FIFOs and devices get 404 with a one-line reason.
- ``GET  /metadata?id=<card id>`` -> ``{"card", "metadata", "description", "file": {...}, "preview": {...},
  "civitai": {...}}`` (``details.preview_info`` and ``details.civitai_info``: where the preview comes from, and the
  Civitai sidecars).
- ``POST /metadata``  body ``{"id", "target", "weight", "description", "notes"}`` -> writes only the ``x.json``
  beside that known entry (through ``Library.save_user_metadata``), returns the updated card. Bodies over
  ``BODY_LIMIT`` get 413 (read no further, whatever ``Content-Length`` says), non-JSON or too deeply nested 400.
- ``POST /preview?id=<card id>`` body: the picture's bytes, ``Content-Type: image/...`` (else 415) -> re-encoded
  by ``preview_upload.reencode`` into ``x.preview.png`` beside that known entry (written atomically), then a
  rescan; returns ``{"card", "preview", "shadowed_by"}`` (``shadowed_by``: a picture that takes precedence, e.g.
  ``x.png``). With ``&replace=shown`` that shadowing ``x.png`` is replaced instead (400 when there is none).
  Over ``preview_upload.MAX_BYTES`` 413, not a readable picture or too many pixels 400, while
  another upload is being decoded 429.

Groups (``GET /groups``, ``POST /groups``, ``POST /groups/delete``) are in ``group_routes``; the inspector
(``GET /inspect``, ``POST /inspect/nearest``) in ``inspector``.

The POST routes are refused (403, nothing read or written) unless ``guard.check_write`` accepts them: a
JSON (upload: ``image/...``) ``Content-Type``, this host's ``Origin``/``Referer`` and the page token header.
``dependencies`` (the host's auth) apply to every route. Routes use ``http_errors.GuardedRoute``: an unexpected
error is a one-line answer (disk errors 400/409/507, others 500) and a log line, never a traceback or a bare 500;
answers are ``SafeJSONResponse`` (names that are not UTF-8 shown with U+FFFD).

Bodies are plain JSON dicts (no pydantic models), so it works on fastapi 0.94/pydantic 1 (WebUI) and current
fastapi alike. ``get_library`` is called per request, so a host may swap its library.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from ..formats.logs import get_logger
from ..library import Library
from ..library.containment import Root
from ..library.hashing import hashable
from ..library.sidecars import PREVIEW_EXTENSIONS
from ..library.vectors import Vocabulary
from ..records import Entry
from . import card_pages, cards, details, guard, inspector, preview_serving, preview_upload, request_bodies
from .http_errors import GuardedRoute, SafeJSONResponse
from .lookup import lookup
from .names import shown
from .request_bodies import BODY_LIMIT, TEXT_LIMIT  # noqa: F401  (the limits as this module states them)

logger = get_logger(__name__)

ROUTE_PREFIX = "/sd-embeddings/v1"
"""Largest metadata request body (bytes): two capped texts even when every character is a JSON escape."""


def safe_preview_path(library: Library, root_index: str, relpath: str) -> tuple[str, Root] | None:
    """The real path of a servable preview and its embeddings folder, or None. See the module docstring."""
    try:
        root = library.folders[int(root_index)]
    except (ValueError, IndexError):
        return None
    if (not relpath or "\\" in relpath or "\0" in relpath or relpath.startswith("/")
            or os.path.isabs(relpath) or any(part in ("", ".", "..") for part in relpath.split("/"))):
        return None
    if os.path.splitext(relpath)[1][1:].lower() not in PREVIEW_EXTENSIONS:
        return None
    folder, _, name = relpath.rpartition("/")
    # compared as shown in the page (U+FFFD for undecodable bytes); the path is built from the entry's own names
    known = lookup(library).by_preview.get((root, folder, name))
    if known is None:
        return None
    path = os.path.join(root, *known.folder.split("/"), known.sidecars.preview) if known.folder \
        else os.path.join(root, known.sidecars.preview)
    place = Root.known(root)
    try:
        real = place.resolve(path)
    except OSError:
        return None
    return (real, place) if os.path.isfile(real) else None


def _hash_state(entry: Entry) -> str:
    """``known``, ``pending`` (the background pass will hash it) or ``too large`` (never hashed)."""
    if entry.sha256:
        return "known"
    return "pending" if hashable(entry.size) else "too large"


def _entry_for(library: Library, card_id: str) -> Entry:
    found = lookup(library).by_card.get(str(card_id), [])
    if len(found) > 1:  # names that differ only in bytes that are not UTF-8
        raise HTTPException(status_code=409, detail="several files have this name as shown; rename one")
    if not found:
        raise HTTPException(status_code=404, detail="unknown embedding")
    return found[0]


@dataclass(frozen=True)
class _Tab:
    """What every route needs: the current library, the preview URL prefix, the negative-name rule."""
    get_library: Callable[[], Library]
    api: str
    auto_negative: Callable[[], bool]
    vocabulary: Vocabulary | None = None

    def cards_page(self, request: Request, library: Library, page: int = 0, build: int | None = None) -> Response:
        found = card_pages.answer(library, page, build, self.auto_negative(),
                                  "gzip" in request.headers.get("accept-encoding", ""))
        headers = {"Vary": "Accept-Encoding", **({"Content-Encoding": "gzip"} if found.gzipped else {})}
        return Response(found.body, found.status, headers, media_type="application/json")

    def card(self, library: Library, entry: Entry) -> dict:
        return asdict(cards.card_model(library, entry, self.api, self.auto_negative()))


def make_router(get_library: Callable[[], Library], api: str = cards.API_PREFIX,
                auto_negative: Callable[[], bool] = lambda: True, dependencies: Sequence[Any] = (),
                vocabulary: Vocabulary | None = None) -> APIRouter:
    """Routes for the tab; ``api`` is the URL prefix written into preview links (relative to the page);
    ``auto_negative()`` says whether the name/folder negative rule applies (a WebUI setting); ``dependencies``
    (``fastapi.Depends``) guard every route, e.g. the host's login; ``vocabulary``: a text encoder's token table
    for the inspector's nearest tokens (``inspector.py``), None when the host has none."""
    router = APIRouter(prefix=ROUTE_PREFIX, dependencies=list(dependencies), route_class=GuardedRoute,
                       default_response_class=SafeJSONResponse)
    tab = _Tab(get_library, api, auto_negative, vocabulary)
    for add in (_add_card_routes, _add_refresh_route, _add_metadata_routes, _add_preview_routes):
        add(router, tab)
    inspector.add_routes(router, get_library, vocabulary, _entry_for)
    from . import group_routes  # it builds on this module's helpers

    group_routes.add_routes(router, tab)
    return router


def _add_card_routes(router: APIRouter, tab: _Tab) -> None:
    @router.get("/cards")
    def list_cards(request: Request, page: int = 0, build: int | None = None) -> Response:
        return tab.cards_page(request, tab.get_library(), page, build)

    @router.get("/version")
    def version() -> dict:
        library = tab.get_library()
        return {"version": library.version, "family": library.family.value if library.family else ""}


def _add_refresh_route(router: APIRouter, tab: _Tab) -> None:
    @router.post("/refresh")
    def refresh(request: Request) -> Response:
        guard.check_write(request)
        library = tab.get_library()
        started = time.perf_counter()
        library.refresh()
        card_pages.changed(library)  # sidecars edited by hand count too: the list is built anew
        logger.info("Refreshed the embeddings library in %.2f s", time.perf_counter() - started)
        return tab.cards_page(request, library)


def _file_facts(entry: Entry) -> dict:
    return {"relpath": shown(entry.relpath), "size": entry.size, "sha256": entry.sha256 or "",
            "sha256_state": _hash_state(entry),
            "modified": time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.mtime_ns / 1e9)), "format": entry.format}


def _add_metadata_routes(router: APIRouter, tab: _Tab) -> None:
    @router.get("/metadata")
    def read_metadata(id: str = "") -> dict:
        """What the dialog shows. A plain GET any page can fire: it never hashes (the background pass does)."""
        library = tab.get_library()
        entry = _entry_for(library, id)
        return {"card": tab.card(library, entry), "metadata": library.user_metadata(entry),
                "description": library.description(entry), "file": _file_facts(entry),
                "preview": details.preview_info(entry), "civitai": details.civitai_info(library, entry)}

    @router.post("/metadata")
    async def write_metadata(request: Request) -> dict:
        guard.check_write(request)
        body = await request_bodies.json_body(request)
        if not isinstance(body, dict):
            raise HTTPException(status_code=400, detail="body must be a JSON object")
        library = tab.get_library()
        entry = _entry_for(library, body.get("id", ""))
        updates = request_bodies.metadata_updates(body)
        data = await run_in_threadpool(library.save_user_metadata, entry, updates)
        card_pages.changed(library)
        return {"card": tab.card(library, entry), "metadata": data}


def _store_preview(tab: _Tab, library: Library, entry: Entry, data: bytes, replace_shown: bool = False) -> dict:
    """``replace_shown``: replace the picture that shadows ``x.preview.png`` (a plain ``x.png``) instead."""
    try:
        target = preview_upload.preview_target(entry, replace_shown)  # refuses a folder outside the root, a non-file
        name = os.path.basename(target) if replace_shown else None
        target = library.save_preview(entry, preview_upload.reencode(data), name)
    except preview_upload.PreviewError as e:
        raise HTTPException(status_code=400, detail=str(e)) from e
    except KeyError as e:  # the entry or its shown picture changed since the dialog opened
        raise HTTPException(status_code=409, detail="the preview changed meanwhile; reopen the dialog") from e
    library.refresh()
    card_pages.changed(library)  # the same name with a new picture is no new library version
    current = library.find(entry.path) or entry
    name = os.path.basename(target)
    shown_name = current.sidecars.preview or ""
    return {"card": tab.card(library, current), "preview": shown(name),
            "shadowed_by": "" if shown_name == name else shown(shown_name)}


def _add_preview_routes(router: APIRouter, tab: _Tab) -> None:
    @router.get("/preview")
    def preview(root: str = "", path: str = "") -> Response:
        found = safe_preview_path(tab.get_library(), root, path)
        if found is None:
            raise HTTPException(status_code=404, detail="not a known preview inside the embeddings folders")
        try:
            return preview_serving.preview_response(*found)
        except preview_serving.NotServable as e:
            raise HTTPException(status_code=404, detail=shown(str(e))) from e

    @router.post("/preview")
    async def replace_preview(request: Request, id: str = "", replace: str = "") -> dict:
        guard.check_write(request, ("image/",))
        if replace not in ("", "upload", "shown"):
            raise HTTPException(status_code=400, detail="replace must be upload or shown")
        library = tab.get_library()
        entry = _entry_for(library, id)
        try:
            with preview_upload.upload_slot():
                data = await request_bodies.read_body(request, preview_upload.MAX_BYTES)
                return await run_in_threadpool(_store_preview, tab, library, entry, data, replace == "shown")
        except preview_upload.UploadBusy as e:
            raise HTTPException(status_code=429, detail=str(e), headers={"Retry-After": "1"}) from e
