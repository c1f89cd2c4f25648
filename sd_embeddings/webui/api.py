"""HTTP: ``/sdapi/v1/embeddings`` with extra fields, and our richer listing at ``/sd-embeddings/v1/embeddings``.

The WebUI's handler builds each item from five fields and validates it through a pydantic model that has only
those (``modules/api/models.py`` ``EmbeddingItem``), so extra fields would be dropped. ``replace_core_route``
swaps that one route for ours on the running app: same path, method, auth dependencies and five fields in the
same places, plus ``family``, ``reason`` and ``shorthash`` (see ``item``). Nothing else of the WebUI's API is touched.

Both listings are returned as ready responses (``SafeJSONResponse``): FastAPI's ``jsonable_encoder`` walks a returned
dict value by value in Python, which cost most of a 10,000-item listing's time; ``json.dumps`` does it in C.

Auth: every route the extension adds is guarded like the WebUI's own routes of its kind.

- API routes (``/sdapi/v1/embeddings``, ``/sd-embeddings/v1/embeddings``): ``api_dependencies`` are those of the
  WebUI's ``/sdapi/v1/embeddings`` route (its ``Api.auth``: HTTP Basic against ``--api-auth``); without that route
  (no ``--api``) but with ``--api-auth``, an equivalent HTTP Basic check. Our listing, which shows absolute paths,
  falls back to the page login when there is no API auth.
- Page routes (cards, previews, metadata, refresh, upload): ``page_dependencies`` are gradio's own ``login_check``
  (the route gradio guards ``/config``, ``/file=`` and uploads with: the ``access-token`` cookie set by the login
  form) when the app has ``auth`` (``--gradio-auth``/``--gradio-auth-path``); without that route, the same check
  on gradio 3.41's cookies and ``app.tokens``.
"""

from __future__ import annotations

import hmac
from typing import Any

from ..formats.logs import get_logger
from ..library.collisions import compatibility
from ..records import Entry, Status
from . import first_scan

logger = get_logger(__name__)

CORE_PATH = "/sdapi/v1/embeddings"
OWN_PATH = "/sd-embeddings/v1/embeddings"
FIRST_SCAN_WAIT_S = 0.1
"""How long a listing waits for a first scan under way before answering with what it has read so far (a small
library is then listed whole; 10,000 files cold take seconds, and the API must answer within half a second)."""


def item(embedding: Any) -> dict:
    """One embedding as the WebUI lists it (its five fields), plus ours where they cost little: ``family``,
    ``reason`` when there is one, and ``shorthash`` once the background pass has hashed the file (never computed
    here: 10,000 files must list at once). ``filename`` and the full hash are in our own listing (``OWN_PATH``)."""
    out = {"step": embedding.step, "sd_checkpoint": embedding.sd_checkpoint,
           "sd_checkpoint_name": embedding.sd_checkpoint_name, "shape": embedding.shape, "vectors": embedding.vectors}
    entry = getattr(embedding, "entry", None)
    if entry is None:  # registered from outside (a Lora bundle): the WebUI's own attributes, as JSON values
        out = {key: plain(value) for key, value in out.items()}
        if getattr(embedding, "shorthash", None):
            out["shorthash"] = embedding.shorthash
        return out
    out["family"] = entry.family.value
    if entry.reason:
        out["reason"] = entry.reason
    shorthash = getattr(embedding, "_shorthash", None) or entry.shorthash
    if shorthash:
        out["shorthash"] = shorthash
    return out


def plain(value: Any) -> Any:
    """A JSON value for an attribute of an object made elsewhere (a bundle's ``step`` may be any pickled type)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value if isinstance(value, int) or value == value and abs(value) != float("inf") else None
    try:
        return int(value)
    except Exception:  # any type at all (a tensor of several values raises RuntimeError)
        return str(value)


def entry_item(entry: Entry, reason: str) -> dict:
    """``item`` from a file record alone (the first scan is still under way: no embedding object yet)."""
    header = entry.header
    out = {"step": header.step if header else None, "sd_checkpoint": header.sd_checkpoint if header else None,
           "sd_checkpoint_name": header.sd_checkpoint_name if header else None, "shape": entry.width,
           "vectors": entry.vectors, "family": entry.family.value}
    if reason:
        out["reason"] = reason
    if entry.shorthash:
        out["shorthash"] = entry.shorthash
    return out


def core_listing(db: Any, wait: float = FIRST_SCAN_WAIT_S) -> dict:
    """The WebUI's listing. During the first scan (after waiting at most ``wait`` s for it): the files read so far,
    as the WebUI would list them (compatibility with the known family; collisions not yet resolved, the first
    file of a keyword listed) and ``"scanning": true``; the key is absent once the listing is complete."""
    if first_scan.wait(db, wait):
        return {
            "loaded": {e.name: item(e) for e in list(db.word_embeddings.values())},
            "skipped": {e.name: item(e) for e in list(db.skipped_embeddings.values())},
        }
    loaded: dict[str, dict] = {}
    skipped: dict[str, dict] = {}
    for entry in db.library.entries_so_far()[1]:
        if entry.status is Status.DUPLICATE or (entry.file_status or entry.status) is not Status.LOADED:
            continue
        fits, reason = compatibility(entry, db.model_family)
        (loaded if fits else skipped).setdefault(entry.keyword, entry_item(entry, reason))
    return {"loaded": loaded, "skipped": skipped, "scanning": True}


def own_listing(db: Any, wait: float = FIRST_SCAN_WAIT_S) -> dict:
    """Every file found, including the ones the WebUI's listing cannot show (unsafe, corrupt, duplicate);
    ``scanning``: the first scan is still under way and these are the files read so far (see ``core_listing``)."""
    library = db.library
    scanned = first_scan.wait(db, wait)
    rows = []
    for entry in library.entries if scanned else library.entries_so_far()[1]:
        rows.append({
            "keyword": entry.keyword, "path": entry.path, "folder": entry.folder, "status": entry.status.value,
            "reason": entry.reason, "family": entry.family.value, "vectors": entry.vectors, "shape": entry.width,
            "hash": entry.sha256 or "", "format": entry.format, "size": entry.size,
            "usable": entry.status is Status.LOADED,
        })
    family = db.model_family.value if db.model_family is not None else None
    return {"model_family": family, "expected_shape": db.expected_shape, "version": db.version,
            "folders": list(library.folders), "scanning": not scanned, "embeddings": rows}


def _route(app: Any, path: str, method: str = "GET") -> Any:
    from fastapi.routing import APIRoute

    return next((r for r in app.router.routes if isinstance(r, APIRoute) and r.path == path and method in r.methods),
                None)


def _basic_auth(spec: str) -> Any:
    """An HTTP Basic dependency for ``user:password[,user:password...]`` (the ``--api-auth`` syntax)."""
    from fastapi import Depends, HTTPException
    from fastapi.security import HTTPBasic

    accounts = dict(pair.split(":", 1) for pair in spec.split(",") if ":" in pair)

    def api_auth(credentials: Any = Depends(HTTPBasic())) -> bool:  # noqa: B008 (FastAPI's idiom)
        expected = accounts.get(credentials.username)
        if expected is not None and hmac.compare_digest(credentials.password.encode(), expected.encode()):
            return True
        raise HTTPException(status_code=401, detail="Incorrect username or password",
                            headers={"WWW-Authenticate": "Basic"})

    return Depends(api_auth)


def _gradio_login(app: Any) -> Any:
    """Gradio 3.41's page login when the app has no ``/login_check`` route: its ``access-token`` (or
    ``access-token-unsecure``) cookie must name a logged-in session in ``app.tokens``."""
    from fastapi import Depends, HTTPException, Request

    def page_login(request: Any) -> None:
        token = request.cookies.get("access-token") or request.cookies.get("access-token-unsecure")
        if getattr(app, "auth", None) is None or (token and token in (getattr(app, "tokens", None) or {})):
            return
        raise HTTPException(status_code=401, detail="Not authenticated")

    page_login.__annotations__ = {"request": Request, "return": None}
    return Depends(page_login)


def page_dependencies(app: Any) -> list:
    """Gradio's own login check when the app has a login (``--gradio-auth``), else nothing."""
    if getattr(app, "auth", None) is None:
        return []
    from fastapi import Depends

    login_check = _route(app, "/login_check")
    return [Depends(login_check.endpoint)] if login_check is not None else [_gradio_login(app)]


def api_dependencies(app: Any) -> list:
    """The WebUI's API auth (see the module docstring); empty when the WebUI's API is open."""
    from modules import shared

    core = _route(app, CORE_PATH)
    if core is not None and core.dependencies:
        return list(core.dependencies)
    spec = getattr(shared.cmd_opts, "api_auth", None)
    return [_basic_auth(spec)] if spec else []


def replace_core_route(app: Any, get_db: Any) -> bool:
    """Serve ``GET /sdapi/v1/embeddings`` from ``core_listing``; False if the WebUI's route is not there."""
    from fastapi.routing import APIRoute

    from ..tab.http_errors import GuardedRoute, SafeJSONResponse

    for index, route in enumerate(list(app.router.routes)):
        if isinstance(route, APIRoute) and route.path == CORE_PATH and "GET" in route.methods:
            dependencies = list(route.dependencies)
            del app.router.routes[index]
            app.router.add_api_route(CORE_PATH, lambda: SafeJSONResponse(core_listing(get_db())), methods=["GET"],
                                     dependencies=dependencies, response_class=SafeJSONResponse,
                                     route_class_override=GuardedRoute, summary="Embeddings (sd-embeddings: with "
                                     "family, reason and shorthash)")
            return True
    return False


def add_own_routes(app: Any, get_db: Any, dependencies: list | None = None) -> None:
    """``GET /sd-embeddings/v1/embeddings``: every file with status and reason, behind ``dependencies``."""
    from ..tab.http_errors import GuardedRoute, SafeJSONResponse

    app.router.add_api_route(OWN_PATH, lambda: SafeJSONResponse(own_listing(get_db())), methods=["GET"],
                             dependencies=list(dependencies or []), response_class=SafeJSONResponse,
                             route_class_override=GuardedRoute)
