"""HTTP routes of the Textual Inversion tab, shared by the standalone host and the WebUI adapter.

``make_router(get_library) -> fastapi.APIRouter`` with prefix ``/sd-embeddings/v1`` (``ROUTE_PREFIX``):

- ``GET  /cards``     -> ``cards.cards_payload`` (the card list as compact JSON rows, folders, problems).
- ``GET  /version``   -> ``{"version": n}``: cheap; the script polls it to notice rescans and family switches.
- ``POST /refresh``   -> rescan (only changed files are read), then the ``/cards`` document.
- ``GET  /preview?root=<i>&path=<relative>`` -> a preview picture. Only a file that is the preview (or the
  picture itself) of a known entry, inside that entry's embeddings folder after resolving symlinks, with a
  picture extension. ``..``, absolute paths, backslashes, NUL, encoded traversal and links leading out get 404.
- ``GET  /metadata?id=<card id>`` -> ``{"card", "metadata", "description", "file": {...}}``.
- ``POST /metadata``  body ``{"id", "target", "weight", "description", "notes"}`` -> writes only the ``x.json``
  beside that known entry (through ``Library.save_user_metadata``), returns the updated card. Bodies over
  ``BODY_LIMIT`` get 413 (read no further, whatever ``Content-Length`` says), non-JSON or too deeply nested 400.
- ``POST /preview?id=<card id>`` body: the picture's bytes, ``Content-Type: image/...`` (else 415) -> re-encoded
  by ``preview_upload.reencode`` into ``x.preview.png`` beside that known entry (written atomically), then a
  rescan; returns ``{"card", "preview", "shadowed_by"}`` (``shadowed_by``: a picture that takes precedence, e.g.
  ``x.png``). Over ``preview_upload.MAX_BYTES`` 413, not a readable picture or too many pixels 400.

Bodies are plain JSON dicts (no pydantic models), so it works on fastapi 0.94/pydantic 1 (WebUI) and current
fastapi alike. ``get_library`` is called per request, so a host may swap its library.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from ..library import Library
from ..library.sidecars import PREVIEW_EXTENSIONS
from ..records import Entry
from . import cards, preview_upload

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
    known = any(e.root == root and e.folder == folder and e.sidecars.preview == name for e in library.entries)
    if not known:
        return None
    path = os.path.join(root, *relpath.split("/"))
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root or not os.path.isfile(real):
        return None
    return real


def _entry_for(library: Library, card_id: str) -> Entry:
    relpath = str(card_id).partition("/")[2]
    for entry in library.entries:
        if entry.relpath == relpath and cards.card_id(library, entry) == card_id:
            return entry
    raise HTTPException(status_code=404, detail="unknown embedding")


def _text(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise HTTPException(status_code=400, detail=f"{key} must be text")
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
            except (TypeError, ValueError):
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


def make_router(get_library: Callable[[], Library], api: str = cards.API_PREFIX,
                auto_negative: Callable[[], bool] = lambda: True) -> APIRouter:
    """Routes for the tab; ``api`` is the URL prefix written into preview links (relative to the page);
    ``auto_negative()`` says whether the name/folder negative rule applies (a WebUI setting)."""
    router = APIRouter(prefix=ROUTE_PREFIX)

    def payload(library: Library) -> dict:
        return cards.cards_payload(library, api, auto_negative())

    @router.get("/cards")
    def list_cards() -> JSONResponse:
        return JSONResponse(payload(get_library()))

    @router.get("/version")
    def version() -> dict:
        library = get_library()
        return {"version": library.version, "family": library.family.value if library.family else ""}

    @router.post("/refresh")
    def refresh() -> JSONResponse:
        library = get_library()
        started = time.perf_counter()
        library.refresh()
        logger.info("Refreshed the embeddings library in %.2f s", time.perf_counter() - started)
        return JSONResponse(payload(library))

    @router.get("/preview")
    def preview(root: str = "", path: str = "") -> FileResponse:
        real = safe_preview_path(get_library(), root, path)
        if real is None:
            raise HTTPException(status_code=404, detail="File not found")
        return FileResponse(real, headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})

    @router.get("/metadata")
    def read_metadata(id: str = "") -> dict:
        library = get_library()
        entry = _entry_for(library, id)
        card = cards.card_model(library, entry, api, auto_negative())
        return {"card": asdict(card), "metadata": library.user_metadata(entry),
                "description": library.description(entry),
                "file": {"relpath": entry.relpath, "size": entry.size, "sha256": library.ensure_hash(entry) or "",
                         "modified": time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.mtime_ns / 1e9)),
                         "format": entry.format}}

    @router.post("/metadata")
    async def write_metadata(request: Request) -> dict:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise HTTPException(status_code=400, detail="body must be a JSON object")
        library = get_library()
        entry = _entry_for(library, body.get("id", ""))
        data = library.save_user_metadata(entry, metadata_updates(body))
        return {"card": asdict(cards.card_model(library, entry, api, auto_negative())), "metadata": data}

    def store_preview(library: Library, entry: Entry, data: bytes) -> dict:
        try:
            target = preview_upload.preview_target(entry)
            preview_upload.write_atomic(target, preview_upload.reencode(data))
        except preview_upload.PreviewError as e:
            raise HTTPException(status_code=400, detail=str(e)) from e
        library.refresh()
        current = library.find(entry.path) or entry
        name = os.path.basename(target)
        shown = current.sidecars.preview or ""
        return {"card": asdict(cards.card_model(library, current, api, auto_negative())), "preview": name,
                "shadowed_by": "" if shown == name else shown}

    @router.post("/preview")
    async def replace_preview(request: Request, id: str = "") -> dict:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not kind.startswith("image/"):
            raise HTTPException(status_code=415, detail="send the picture itself with an image/... Content-Type")
        library = get_library()
        entry = _entry_for(library, id)
        data = await _body(request, preview_upload.MAX_BYTES)
        return await run_in_threadpool(store_preview, library, entry, data)

    return router
