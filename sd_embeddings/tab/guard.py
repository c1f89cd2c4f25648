"""Cross-site write protection for the tab's state-changing routes (POST metadata, preview upload, refresh).

A page on another site can make the browser send a POST to this host: a ``<form>`` (``text/plain``,
``application/x-www-form-urlencoded``, ``multipart/form-data``), a ``no-cors`` fetch, or a CORS fetch when the
host's CORS policy lets that origin in (gradio lets any ``localhost`` origin in, with credentials). A write is
accepted only when all three hold, checked before the body is read:

1. its ``Content-Type`` is one the route names (``application/json``; ``image/...`` for the raw preview upload),
   neither of which a form can send nor a ``no-cors`` fetch can set;
2. its ``Origin`` (or, when a browser sends none, its ``Referer``) names this host: the same host and port as the
   request's ``Host`` header (the scheme is not compared, so a TLS proxy in front of the host still works);
3. it carries the page token: ``X-SD-Embeddings-Token`` equal to ``page_token()``, a random value made once per
   server start and written into the page (``token_meta_html``), where only a page of this origin can read it.

A refusal is ``HTTPException(403)`` with a one-line reason; nothing has been read or written by then.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

TOKEN_HEADER = "X-SD-Embeddings-Token"
TOKEN_META = "sd-embeddings-token"
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
_lock = threading.Lock()
_token: list[str] = []


def page_token() -> str:
    """This process's page token (made on first use: one per server start)."""
    with _lock:
        if not _token:
            _token.append(secrets.token_urlsafe(32))
        return _token[0]


def token_meta_html() -> str:
    """``<meta name="sd-embeddings-token" content="...">``: the script reads the token from the page."""
    return f'<meta name="{TOKEN_META}" content="{page_token()}">'


def _host_port(netloc: str, scheme: str = "") -> str:
    netloc = netloc.strip().lower().rpartition("@")[2]
    default = _DEFAULT_PORTS.get(scheme)
    if default and netloc.endswith(f":{default}"):
        netloc = netloc[: -len(default) - 1]
    return netloc


def request_origin(request: Request) -> str | None:
    """``host[:port]`` of the page that sent the request (``Origin``, else ``Referer``), None when neither."""
    origin = request.headers.get("origin")
    if origin is None:
        origin = request.headers.get("referer")
        if origin is None:
            return None
    parts = urlsplit(origin.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc:
        return ""  # "null" (sandboxed frames, file: pages) and anything that is not a web origin
    return _host_port(parts.netloc, parts.scheme)


def own_origin(request: Request) -> str:
    """``host[:port]`` this request was sent to (its ``Host`` header)."""
    return _host_port(request.headers.get("host", ""), request.url.scheme)


def check_write(request: Request, kinds: tuple[str, ...] = ("application/json",)) -> None:
    """Refuse (403) a state-changing request that another site could have sent; see the module docstring."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not any(kind.startswith(k) and len(kind) > len(k) if k.endswith("/") else kind == k for k in kinds):
        wanted = " or ".join(f"{k}..." if k.endswith("/") else k for k in kinds)
        raise HTTPException(status_code=403, detail=f"refused: Content-Type must be {wanted}")
    origin = request_origin(request)
    if origin is None:
        raise HTTPException(status_code=403, detail="refused: the request has no Origin or Referer header")
    own = own_origin(request)
    if not own or origin != own:
        raise HTTPException(status_code=403, detail="refused: the request comes from another site's page")
    sent = request.headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(sent.encode("utf-8", "replace"), page_token().encode()):
        raise HTTPException(status_code=403, detail=f"refused: missing or wrong {TOKEN_HEADER} (reload the page)")
