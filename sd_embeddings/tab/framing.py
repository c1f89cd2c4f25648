"""No other site may frame our pages: ``Content-Security-Policy: frame-ancestors 'self'`` and
``X-Frame-Options: SAMEORIGIN`` (older browsers). A page framed invisibly by another site keeps its page token and
its same-origin writes, so tricked clicks (clickjacking) could refresh, edit metadata or replace previews.

``frame_headers`` adds them to one response's headers; ``http_errors.GuardedRoute`` applies it to every answer of
our routes (in the WebUI too, where the WebUI's own pages are the WebUI's business); ``FramingMiddleware`` applies
it to every answer of the standalone host (the gradio page, its assets and API, refusals of the login).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import MutableHeaders

FRAME_ANCESTORS = "frame-ancestors 'self'"
HEADERS = {"Content-Security-Policy": FRAME_ANCESTORS, "X-Frame-Options": "SAMEORIGIN"}


def frame_headers(headers: MutableMapping[str, str]) -> None:
    """Add both headers; an existing policy (a preview's ``default-src 'none'; sandbox``) is kept and extended."""
    policy = headers.get("content-security-policy")
    if policy is None:
        headers["content-security-policy"] = FRAME_ANCESTORS
    elif "frame-ancestors" not in policy:
        headers["content-security-policy"] = f"{policy}; {FRAME_ANCESTORS}"
    if "x-frame-options" not in headers:
        headers["x-frame-options"] = HEADERS["X-Frame-Options"]


class FramingMiddleware:
    """ASGI middleware: ``frame_headers`` on the start of every HTTP response of the app it wraps."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def framed(message: dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                frame_headers(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, framed)
