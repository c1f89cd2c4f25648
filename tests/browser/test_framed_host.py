"""Clickjacking, in Chromium: a page of another site (another port on loopback: another origin) frames the standalone
host; the browser must refuse to show it (``frame-ancestors 'self'``, ``X-Frame-Options``). The attacker's page and
an unprotected control page come from small HTTP servers in the test (two more origins); the control frame shows
that a cross-origin frame that is allowed is seen by the same check."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from factories import vectors, write_a1111_pt

pytestmark = pytest.mark.browser

TOKEN_META = "() => document.querySelectorAll('meta[name=\"sd-embeddings-token\"]').length"
PAGES: dict[str, str] = {"/control": "<p id=marker>an unprotected page</p>"}


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the handler's protocol
        body = PAGES.get(self.path, "").encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sites() -> Iterator[tuple[str, str]]:
    """Two origins: the attacker's and an unprotected page's (each its own port)."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Pages) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield tuple(f"http://127.0.0.1:{server.server_address[1]}" for server in servers)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_another_site_cannot_frame_the_page(tmp_path, host_factory, browser, sites):
    attacker, unprotected = sites
    write_a1111_pt(tmp_path / "embeddings" / "goodemb.pt", vectors(2))
    host = host_factory(tmp_path / "embeddings")
    PAGES["/attack"] = f'<iframe src="{host.url}"></iframe><iframe src="{unprotected}/control"></iframe>'
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{attacker}/attack", wait_until="load")
        framed, control = page.frames[1], page.frames[2]
        assert control.evaluate("() => document.querySelectorAll('#marker').length") == 1
        assert not framed.evaluate("() => location.href").startswith(host.url)
        assert framed.evaluate(TOKEN_META) == 0
    finally:
        context.close()
