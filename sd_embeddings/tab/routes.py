"""HTTP routes of the Textual Inversion tab, shared by the standalone host and the WebUI adapter.

``make_router(get_library) -> fastapi.APIRouter`` with prefix ``/sd-embeddings/v1`` (``ROUTE_PREFIX``):

- ``GET  /cards``     -> ``cards.cards_payload`` (the card list as compact JSON rows, folders, problems).
- ``GET  /version``   -> ``{"version": n}``: cheap; the script polls it to notice rescans and family switches.
- ``POST /refresh``   -> rescan (only changed files are read), then the ``/cards`` document.
- ``GET  /preview?root=<i>&path=<relative>`` -> a preview picture. Only a file that is the preview (or the
  picture itself) of a known entry, inside that entry's embeddings folder after resolving symlinks, with a
  picture extension, whose bytes sniff as a picture (``preview_serving``: sniffed type, ``nosniff``, sandboxing
  CSP). ``..``, absolute paths, backslashes, NUL, encoded traversal, links leading out, SVG/HTML behind a picture
  name, FIFOs and devices get 404 with a one-line reason.
- ``GET  /metadata?id=<card id>`` -> ``{"card", "metadata", "description", "file": {...}}``.
- ``POST /metadata``  body ``{"id", "target", "weight", "description", "notes"}`` -> writes only the ``x.json``
  beside that known entry (through ``Library.save_user_metadata``), returns the updated card. Bodies over
  ``BODY_LIMIT`` get 413 (read no further, whatever ``Content-Length`` says), non-JSON or too deeply nested 400.
- ``POST /preview?id=<card id>`` body: the picture's bytes, ``Content-Type: image/...`` (else 415) -> re-encoded
  by ``preview_upload.reencode`` into ``x.preview.png`` beside that known entry (written atomically), then a
  rescan; returns ``{"card", "preview", "shadowed_by"}`` (``shadowed_by``: a picture that takes precedence, e.g.
  ``x.png``). Over ``preview_upload.MAX_BYTES`` 413, not a readable picture or too many pixels 400, while
  another upload is being decoded 429.

Groups (``GET /groups``, ``POST /groups``, ``POST /groups/delete``) are in ``group_routes``.

The POST routes are refused (403, nothing read or written) unless ``guard.check_write`` accepts them: a
JSON (upload: ``image/...``) ``Content-Type``, this host's ``Origin``/``Referer`` and the page token header.
``dependencies`` (the host's auth) apply to every route. Routes use ``http_errors.GuardedRoute``: an unexpected
error is a one-line answer (disk errors 400/409/507, others 500) and a log line, never a traceback or a bare 500;
answers are ``SafeJSONResponse`` (names that are not UTF-8 shown with U+FFFD).

Bodies are plain JSON dicts (no pydantic models), so it works on fastapi 0.94/pydantic 1 (WebUI) and current
fastapi alike. ``get_library`` is called per request, so a host may swap its library.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from ..library import Library
from ..library.hashing import hashable
from ..library.sidecars import PREVIEW_EXTENSIONS
from ..records import Entry
from . import cards, guard, preview_serving, preview_upload
from .http_errors import GuardedRoute, SafeJSONResponse
from .names import has_surrogate, shown

logger = logging.getLogger(__name__)

ROUTE_PREFIX = "/sd-embeddings/v1"
TEXT_LIMIT = 20_000
BODY_LIMIT = 256 * 1024
"""Largest metadata request body (bytes): two capped texts even when every character is a JSON escape."""


def safe_preview_path(library: Library, root_index: str, relpath: str) -> str | None:
    """The absolute path of a servable preview, or None. See the module docstring for the rules."""
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
    known = next((e for e in library.entries if e.root == root and shown(e.folder) == folder and e.sidecars.preview
                  and shown(e.sidecars.preview) == name), None)
    if known is None:
        return None
    path = os.path.join(root, *known.folder.split("/"), known.sidecars.preview) if known.folder \
        else os.path.join(root, known.sidecars.preview)
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root or not os.path.isfile(real):
        return None
    return real


def _hash_state(entry: Entry) -> str:
    """``known``, ``pending`` (the background pass will hash it) or ``too large`` (never hashed)."""
    if entry.sha256:
        return "known"
    return "pending" if hashable(entry.size) else "too large"


def _entry_for(library: Library, card_id: str) -> Entry:
    relpath = str(card_id).partition("/")[2]
    found = [e for e in library.entries
             if shown(e.relpath) == relpath and shown(cards.card_id(library, e)) == card_id]
    if len(found) > 1:  # names that differ only in bytes that are not UTF-8
        raise HTTPException(status_code=409, detail="several files have this name as shown; rename one")
    if not found:
        raise HTTPException(status_code=404, detail="unknown embedding")
    return found[0]


def _text(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise HTTPException(status_code=400, detail=f"{key} must be text")
    if has_surrogate(value):
        raise HTTPException(status_code=400, detail=f"{key} is not valid Unicode (a lone surrogate)")
    return value[:TEXT_LIMIT]


def metadata_updates(body: dict) -> dict:
    """Validated ``x.json`` updates from a request body; unknown keys are ignored."""
    updates: dict = {}
    for key in ("description", "notes"):
        value = _text(body, key)
        if value is not None:
            updates[key] = value
    if "target" in body:
        if body["target"] not in cards.TARGETS:
            raise HTTPException(status_code=400, detail="target must be auto, positive or negative")
        updates["target"] = None if body["target"] == "auto" else body["target"]
    if "weight" in body:
        weight = body["weight"]
        if weight in (None, ""):
            updates["preferred weight"] = None
        else:
            try:
                number = float(weight)
            except (TypeError, ValueError, OverflowError):  # OverflowError: an int too large for a float
                number = math.nan
            if not math.isfinite(number) or abs(number) > 100:
                raise HTTPException(status_code=400, detail="weight must be a number between -100 and 100")
            updates["preferred weight"] = None if number in (0.0, 1.0) else number
    return updates


async def _body(request: Request, limit: int) -> bytes:
    """The request body, read no further than ``limit`` bytes whatever the headers claim."""
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > limit:
        raise HTTPException(status_code=413, detail=f"body larger than {limit} bytes")
    raw = bytearray()
    async for piece in request.stream():
        raw += piece
        if len(raw) > limit:
            raise HTTPException(status_code=413, detail=f"body larger than {limit} bytes")
    return bytes(raw)


async def _json_body(request: Request) -> object:
    """The request body as JSON, read no further than ``BODY_LIMIT`` bytes whatever the headers claim."""
    raw = await _body(request, BODY_LIMIT)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:  # RecursionError: deeply nested arrays
        raise HTTPException(status_code=400, detail="body must be JSON") from e


@dataclass(frozen=True)
class _Tab:
    """What every route needs: the current library, the preview URL prefix, the negative-name rule."""
    get_library: Callable[[], Library]
    api: str
    auto_negative: Callable[[], bool]

    def payload(self, library: Library) -> dict:
        return cards.cards_payload(library, self.api, self.auto_negative())

    def card(self, library: Library, entry: Entry) -> dict:
        return asdict(cards.card_model(library, entry, self.api, self.auto_negative()))


def make_router(get_library: Callable[[], Library], api: str = cards.API_PREFIX,
                auto_negative: Callable[[], bool] = lambda: True, dependencies: Sequence[Any] = ()) -> APIRouter:
    """Routes for the tab; ``api`` is the URL prefix written into preview links (relative to the page);
    ``auto_negative()`` says whether the name/folder negative rule applies (a WebUI setting); ``dependencies``
    (``fastapi.Depends``) guard every route, e.g. the host's login."""
    router = APIRouter(prefix=ROUTE_PREFIX, dependencies=list(dependencies), route_class=GuardedRoute,
                       default_response_class=SafeJSONResponse)
    tab = _Tab(get_library, api, auto_negative)
    for add in (_add_card_routes, _add_refresh_route, _add_metadata_routes, _add_preview_routes):
        add(router, tab)
    from . import group_routes  # it builds on this module's helpers

    group_routes.add_routes(router, tab)
    return router


def _add_card_routes(router: APIRouter, tab: _Tab) -> None:
    @router.get("/cards")
    def list_cards() -> Response:
        return SafeJSONResponse(tab.payload(tab.get_library()))

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
        logger.info("Refreshed the embeddings library in %.2f s", time.perf_counter() - started)
        return SafeJSONResponse(tab.payload(library))


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
                "description": library.description(entry), "file": _file_facts(entry)}

    @router.post("/metadata")
    async def write_metadata(request: Request) -> dict:
        guard.check_write(request)
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise HTTPException(status_code=400, detail="body must be a JSON object")
        library = tab.get_library()
        entry = _entry_for(library, body.get("id", ""))
        updates = metadata_updates(body)
        data = await run_in_threadpool(library.save_user_metadata, entry, updates)
        return {"card": tab.card(library, entry), "metadata": data}


def _store_preview(tab: _Tab, library: Library, entry: Entry, data: bytes) -> dict:
    try:
        preview_upload.preview_target(entry)  # refuses a folder outside the root, a name taken by a non-file
        target = library.save_preview(entry, preview_upload.reencode(data))
    except preview_upload.PreviewError as e:
        raise HTTPException(status_code=400, detail=str(e)) from e
    library.refresh()
    current = library.find(entry.path) or entry
    name = os.path.basename(target)
    shown_name = current.sidecars.preview or ""
    return {"card": tab.card(library, current), "preview": shown(name),
            "shadowed_by": "" if shown_name == name else shown(shown_name)}


def _add_preview_routes(router: APIRouter, tab: _Tab) -> None:
    @router.get("/preview")
    def preview(root: str = "", path: str = "") -> Response:
        real = safe_preview_path(tab.get_library(), root, path)
        if real is None:
            raise HTTPException(status_code=404, detail="not a known preview inside the embeddings folders")
        try:
            return preview_serving.preview_response(real)
        except preview_serving.NotServable as e:
            raise HTTPException(status_code=404, detail=shown(str(e))) from e

    @router.post("/preview")
    async def replace_preview(request: Request, id: str = "") -> dict:
        guard.check_write(request, ("image/",))
        library = tab.get_library()
        entry = _entry_for(library, id)
        try:
            with preview_upload.upload_slot():
                data = await _body(request, preview_upload.MAX_BYTES)
                return await run_in_threadpool(_store_preview, tab, library, entry, data)
        except preview_upload.UploadBusy as e:
            raise HTTPException(status_code=429, detail=str(e), headers={"Retry-After": "1"}) from e
