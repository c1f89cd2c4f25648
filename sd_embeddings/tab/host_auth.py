"""Who may talk to the standalone host (``app.py``, ``serve``): the ``--host`` policy and HTTP Basic auth.

- On a loopback address (``127.0.0.1``, ``::1``, ``localhost``) the host is open, as before. Which address that
  is comes from ``listen``: ``--host`` resolved once and bound exactly, loopback decided from the bound address.
- On any other address it serves only with ``--auth USER:PASS`` (every request, the page and gradio's own routes
  included, needs those credentials: ``BasicAuthMiddleware``), or with an explicit ``--no-auth``, which prints one
  warning line. ``listen_policy`` decides; ``serve`` refuses to start otherwise.
- On loopback, ``LoopbackHostMiddleware`` answers 403 to a request whose ``Host`` is not a loopback name, so a
  page on another site whose name is re-bound to 127.0.0.1 (DNS rebinding) cannot read or write the host.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .listen import Address

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]
LOOPBACK_NAMES = ("localhost", "localhost.")


class PolicyError(ValueError):
    """The host may not start this way; the message says what to pass instead."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    @classmethod
    def parse(cls, text: str) -> Credentials:
        user, sep, password = text.partition(":")
        if not sep or not user or not password:
            raise PolicyError("--auth must be USER:PASS (both non-empty)")
        return cls(user, password)

    def accepts(self, header: str | None) -> bool:
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        # both compared, in constant time, whatever the first one gave
        ok_user = hmac.compare_digest(user.encode(), self.user.encode())
        ok_password = hmac.compare_digest(password.encode(), self.password.encode())
        return ok_user and ok_password


def is_loopback(host: str) -> bool:
    """Whether a ``Host`` header names this machine (``localhost``, ``127.0.0.1``, ``[::1]``). Only for the
    header check: whether the host may serve without a login is decided from the address bound (``listen``)."""
    name = host.strip().strip("[]").lower()
    return name in LOOPBACK_NAMES or is_loopback_ip(name)


def is_loopback_ip(text: str) -> bool:
    """127.0.0.0/8, ``::1`` or an IPv6-mapped 127.x address (Python 3.11 calls the mapped ones not loopback)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def listen_policy(address: Address, auth: str | None, no_auth: bool) -> tuple[Credentials | None, str | None]:
    """(credentials to require, a warning line to print) for ``--host``/``--auth``/``--no-auth`` on a resolved
    ``address`` (``listen.resolve``); raises ``PolicyError`` when a non-loopback address has neither."""
    if auth and no_auth:
        raise PolicyError("give either --auth USER:PASS or --no-auth, not both")
    credentials = Credentials.parse(auth) if auth else None
    if credentials or address.loopback:
        return credentials, None
    if no_auth:
        return None, (f"warning: serving {address.ip} without authentication (--no-auth): anyone who can reach "
                      "this address can read and change your embeddings' metadata and previews")
    raise PolicyError(f"--host {address.ip} is reachable from other machines: pass --auth USER:PASS "
                      "(or --no-auth to serve without a password)")


def _host_name(host: str) -> str:
    """``Host`` header without its port: ``[::1]:7861`` -> ``::1``, ``localhost:7861`` -> ``localhost``."""
    host = host.strip()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0] if host.count(":") == 1 else host


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _refuse(send: Callable[[Any], Awaitable[None]], status: int, reason: str,
                  extra: list[tuple[bytes, bytes]] = ()) -> None:
    body = (reason + "\n").encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BasicAuthMiddleware:
    """Every HTTP request needs the credentials (401 with ``WWW-Authenticate: Basic`` otherwise); a websocket
    without them is closed before it is accepted."""

    def __init__(self, app: ASGIApp, credentials: Credentials) -> None:
        self.app, self.credentials = app, credentials

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and not self.credentials.accepts(_header(scope, b"authorization")):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await _refuse(send, 401, "authentication required",
                          [(b"www-authenticate", b'Basic realm="sd-embeddings", charset="UTF-8"')])
            return
        await self.app(scope, receive, send)


class SameOriginWritesMiddleware:
    """A request that can change state (any method but GET/HEAD/OPTIONS) sent by another site's page is refused,
    on every route: gradio's own upload route takes a plain cross-site form post and writes it to disk."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") not in ("GET", "HEAD", "OPTIONS"):
            from starlette.requests import Request  # not at import: the command line reads this module too

            from . import guard

            request = Request(scope)
            origin = guard.request_origin(request)
            if origin is not None and origin != guard.own_origin(request):
                await _refuse(send, 403, "refused: the request comes from another site's page")
                return
        await self.app(scope, receive, send)


class LoopbackHostMiddleware:
    """On a loopback bind: 403 unless the ``Host`` header is a loopback name or address."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and not is_loopback(_host_name(_header(scope, b"host") or "")):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await _refuse(send, 403, "refused: this host answers only to localhost names (DNS rebinding?)")
            return
        await self.app(scope, receive, send)
