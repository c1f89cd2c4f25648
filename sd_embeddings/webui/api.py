"""HTTP: ``/sdapi/v1/embeddings`` with extra fields, and our richer listing at ``/sd-embeddings/v1/embeddings``.

The WebUI's handler builds each item from five fields and validates it through a pydantic model that has only
those (``modules/api/models.py`` ``EmbeddingItem``), so extra fields would be dropped. ``replace_core_route``
swaps that one route for ours on the running app: same path, method, auth dependencies and five fields in the
same places, plus ``filename``, ``hash``, ``family`` and ``reason``. Nothing else of the WebUI's API is touched.
"""

from __future__ import annotations

import logging
from typing import Any

from ..records import Status

logger = logging.getLogger(__name__)

CORE_PATH = "/sdapi/v1/embeddings"
OWN_PATH = "/sd-embeddings/v1/embeddings"


def item(embedding: Any) -> dict:
    """One embedding as the WebUI lists it, plus our fields (empty strings where unknown)."""
    entry = getattr(embedding, "entry", None)
    return {
        "step": embedding.step,
        "sd_checkpoint": embedding.sd_checkpoint,
        "sd_checkpoint_name": embedding.sd_checkpoint_name,
        "shape": embedding.shape,
        "vectors": embedding.vectors,
        "filename": embedding.filename or "",
        "hash": embedding.hash or "",
        "family": entry.family.value if entry is not None else "",
        "reason": entry.reason if entry is not None else "",
    }


def core_listing(db: Any) -> dict:
    return {
        "loaded": {e.name: item(e) for e in list(db.word_embeddings.values())},
        "skipped": {e.name: item(e) for e in list(db.skipped_embeddings.values())},
    }


def own_listing(db: Any) -> dict:
    """Every file found, including the ones the WebUI's listing cannot show (unsafe, corrupt, duplicate)."""
    library = db.library
    rows = []
    for entry in library.entries:
        rows.append({
            "keyword": entry.keyword, "path": entry.path, "folder": entry.folder, "status": entry.status.value,
            "reason": entry.reason, "family": entry.family.value, "vectors": entry.vectors, "shape": entry.width,
            "hash": entry.sha256 or "", "format": entry.format, "size": entry.size,
            "usable": entry.status is Status.LOADED,
        })
    family = db.model_family.value if db.model_family is not None else None
    return {"model_family": family, "expected_shape": db.expected_shape, "version": db.version,
            "folders": list(library.folders), "embeddings": rows}


def replace_core_route(app: Any, get_db: Any) -> bool:
    """Serve ``GET /sdapi/v1/embeddings`` from ``core_listing``; False if the WebUI's route is not there."""
    from fastapi.routing import APIRoute

    for index, route in enumerate(list(app.router.routes)):
        if isinstance(route, APIRoute) and route.path == CORE_PATH and "GET" in route.methods:
            dependencies = list(route.dependencies)
            del app.router.routes[index]
            app.add_api_route(CORE_PATH, lambda: core_listing(get_db()), methods=["GET"],
                              dependencies=dependencies, summary="Embeddings (sd-embeddings: with filename, hash, "
                              "family and reason)")
            return True
    return False


def add_own_routes(app: Any, get_db: Any) -> None:
    """``GET /sd-embeddings/v1/embeddings``: every file with status and reason; no auth beyond the app's own."""
    app.add_api_route(OWN_PATH, lambda: own_listing(get_db()), methods=["GET"])
