"""Request bodies of the tab's write routes: read no further than a limit whatever the headers claim, JSON checked,
metadata edits validated (texts cut at ``TEXT_LIMIT``, lone surrogates refused, weights finite and in range)."""

from __future__ import annotations

import json
import math

from fastapi import HTTPException, Request

from . import cards
from .names import has_surrogate

TEXT_LIMIT = 20_000
BODY_LIMIT = 256 * 1024


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


async def read_body(request: Request, limit: int) -> bytes:
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


async def json_body(request: Request) -> object:
    """The request body as JSON, read no further than ``BODY_LIMIT`` bytes whatever the headers claim."""
    raw = await read_body(request, BODY_LIMIT)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:  # RecursionError: deeply nested arrays
        raise HTTPException(status_code=400, detail="body must be JSON") from e
