"""The dialog's inspector: per-vector norms and flags, files holding the same vectors, nearest vocabulary tokens.

Routes (added to the tab's router by ``add_routes``; the router's auth applies):

- ``GET /inspect?id=<card id>`` -> ``{"parts": [{"key", "width", "norms", "nonfinite", "zero"}], "fingerprint",
  "same_vectors": [{"relpath", "keyword", "status"}], "compared_all", "nearest": {"state", "detail"}}``, or
  ``{"error": reason}`` when the vectors cannot be read (the reason names the vectors holding NaN, for one).
  ``same_vectors``: other card entries with this fingerprint; entries of the same shape whose fingerprint is not
  known yet are decoded now, at most ``MAX_COMPARE_LOADS`` per request (``compared_all`` false when more were left).
  ``nearest.state`` is the host's ``Vocabulary.state()``: ``ready``, ``loadable`` (the next call loads a text
  encoder first) or ``none`` (``detail`` says why).
- ``POST /inspect/nearest?id=<card id>`` (JSON content type, guarded like a write: it may load a model; the body
  is not read) -> ``{"source", "parts": [{"key",
  "width", "vectors": [[{"id", "token", "cosine"}] | null], "error"}]}``: the ``DEFAULT_K`` nearest tokens of each
  vector (cosine similarity against the token table of the same width; a zero vector has none). One lookup runs
  at a time (another gets 429); results are kept per file version and table (``CACHE_SIZE``).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ..errors import EmbeddingError
from ..library import Library
from ..library import vectors as vector_math
from ..records import Entry
from . import guard
from .cards import CARD_STATUSES
from .names import shown

MAX_COMPARE_LOADS = 64
CACHE_SIZE = 64
_slot = threading.BoundedSemaphore(1)
_cache: collections.OrderedDict[tuple, dict] = collections.OrderedDict()
_cache_lock = threading.Lock()


def stats(library: Library, entry: Entry) -> dict[str, Any]:
    """Norms and flags of each part's vectors, and the fingerprint (see the module docstring)."""
    data = library.load(entry)
    parts = [{"key": key, "width": int(tensor.shape[-1]), **vector_math.vector_stats(tensor)}
             for key, tensor in vector_math.parts_of(data).items()]
    return {"parts": parts, "fingerprint": entry.fingerprint or vector_math.fingerprint(data)}


def same_vectors(library: Library, entry: Entry, fingerprint: str) -> tuple[list[dict], bool]:
    """Other card entries whose vectors have ``fingerprint``, and whether every candidate was compared."""
    shape = entry.header.shape.parts if entry.header else None
    found, loads, complete = [], 0, True
    for other in library.entries:
        if other.path == entry.path or other.status not in CARD_STATUSES or not other.header \
                or other.header.shape.parts != shape:
            continue
        if other.fingerprint is None:
            if loads >= MAX_COMPARE_LOADS:
                complete = False
                continue
            loads += 1
            try:
                library.load(other)  # notes its fingerprint on the entry
            except EmbeddingError:
                continue
        if other.fingerprint == fingerprint:
            found.append({"relpath": shown(other.relpath), "keyword": shown(other.keyword),
                          "status": other.status.value})
    return found, complete


def vocabulary_state(vocabulary: vector_math.Vocabulary | None) -> dict[str, str]:
    if vocabulary is None:
        return {"state": "none", "detail": "this host has no text encoder"}
    state, detail = vocabulary.state()
    return {"state": state, "detail": detail}


def inspect(library: Library, entry: Entry, vocabulary: vector_math.Vocabulary | None) -> dict[str, Any]:
    try:
        found = stats(library, entry)
    except EmbeddingError as e:
        return {"error": shown(e.reason)}
    found["same_vectors"], found["compared_all"] = same_vectors(library, entry, found["fingerprint"])
    found["nearest"] = vocabulary_state(vocabulary)
    return found


def nearest(library: Library, entry: Entry, vocabulary: vector_math.Vocabulary) -> dict[str, Any]:
    """The nearest tokens of each vector of ``entry`` (see the module docstring); raises ``VocabularyError``."""
    table = vocabulary.table()
    key = (entry.path, entry.stamp, id(table))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    parts = []
    for part, tensor in vector_math.parts_of(library.load(entry)).items():
        width = int(tensor.shape[-1])
        tokens = table.tables.get(width)
        if tokens is None:
            parts.append({"key": part, "width": width, "vectors": [],
                          "error": f"{table.source} has no {width}-wide token table"})
            continue
        rows = vector_math.nearest_tokens(tensor, tokens)
        parts.append({"key": part, "width": width, "vectors": [
            None if row is None else [{"id": t, "token": shown(table.token_text(t)), "cosine": c} for t, c in row]
            for row in rows]})
    answer = {"source": shown(table.source), "parts": parts}
    with _cache_lock:
        _cache[key] = answer
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return answer


def _nearest_now(library: Library, entry: Entry, vocabulary: vector_math.Vocabulary) -> dict[str, Any]:
    if not _slot.acquire(blocking=False):
        raise HTTPException(status_code=429, detail="another lookup is running; try again in a moment",
                            headers={"Retry-After": "1"})
    try:
        return nearest(library, entry, vocabulary)
    except vector_math.VocabularyError as e:
        raise HTTPException(status_code=409, detail=shown(str(e))) from e
    except EmbeddingError as e:
        raise HTTPException(status_code=409, detail=shown(e.reason)) from e
    finally:
        _slot.release()


def add_routes(router: APIRouter, get_library: Callable[[], Library], vocabulary: vector_math.Vocabulary | None,
               entry_for: Callable[[Library, str], Entry]) -> None:
    @router.get("/inspect")
    def inspect_route(id: str = "") -> dict:
        library = get_library()
        return inspect(library, entry_for(library, id), vocabulary)

    @router.post("/inspect/nearest")
    async def nearest_route(request: Request, id: str = "") -> dict:
        guard.check_write(request)  # the body is not read: the card id is in the query
        if vocabulary is None:
            raise HTTPException(status_code=409, detail="this host has no text encoder")
        library = get_library()
        return await run_in_threadpool(_nearest_now, library, entry_for(library, id), vocabulary)
