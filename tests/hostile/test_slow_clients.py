"""Slowloris against the standalone host: clients that send a request's headers a byte at a time (or never) must
not hold the server's connections for ever, and never keep a real request out. The real host app (gradio page and
our routes over a real library) is served by uvicorn with ``slow_clients.server_options`` on a loopback port, in a
thread; the held sockets are real. Bounds are counts and events (the server closes a socket); waits are generous."""

from __future__ import annotations

import http.client
import selectors
import socket
import threading
import urllib.request
from collections.abc import Iterator

import pytest
from factories import vectors, write_a1111_pt

from sd_embeddings import app
from sd_embeddings.library import Library
from sd_embeddings.tab import listen
from sd_embeddings.tab import slow_clients as host

HALF_SENT = b"GET /sd-embeddings/v1/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
GENEROUS_S = 60.0


@pytest.fixture(scope="module")
def port(tmp_path_factory) -> Iterator[int]:
    import uvicorn

    folder = tmp_path_factory.mktemp("slow") / "embeddings"
    write_a1111_pt(folder / "goodemb.pt", vectors(2))
    library = Library([folder], background_hashing=False)
    library.refresh()
    sock = listen.bind(listen.resolve("127.0.0.1", 0))
    config = uvicorn.Config(app.create_app(library), host="127.0.0.1", port=sock.getsockname()[1],
                            **host.server_options())
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(GENEROUS_S)
        sock.close()


def _status(port: int) -> int | str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/sd-embeddings/v1/version", timeout=GENEROUS_S) as r:
            return r.status
    except Exception as e:  # noqa: BLE001 - the kind of failure is the result
        return getattr(e, "code", type(e).__name__)


def _hold(port: int, count: int, first_bytes: bytes = HALF_SENT) -> list[socket.socket]:
    held = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=GENEROUS_S)
        if first_bytes:
            client.sendall(first_bytes)
        held.append(client)
    return held


def _closed_by_server(held: list[socket.socket], wanted: int) -> int:
    """How many of ``held`` the server closed, waiting (at most ``GENEROUS_S`` without news) until ``wanted``."""
    closed = 0
    with selectors.DefaultSelector() as selector:
        for client in held:
            selector.register(client, selectors.EVENT_READ)
        while closed < wanted:
            ready = selector.select(GENEROUS_S)
            if not ready:
                break
            for key, _ in ready:
                selector.unregister(key.fileobj)
                try:
                    data = key.fileobj.recv(1024)
                except ConnectionError:
                    data = b""
                closed += not data
    return closed


def test_half_sent_requests_do_not_keep_a_real_request_out(port, monkeypatch):
    """300 sockets hold half-sent headers (more than uvicorn's connection limit): a real request is still
    answered, and all but the newest few of one address's half-sent requests are closed at once."""
    monkeypatch.setattr(host, "HEADER_TIMEOUT_S", 3600.0)  # only the per-address cap can close them here
    held = _hold(port, 300)
    try:
        assert _status(port) == 200
        expected = len(held) - host.PENDING_PER_CLIENT
        assert _closed_by_server(held, expected) >= expected
    finally:
        for client in held:
            client.close()


def test_headers_that_never_complete_are_closed(port, monkeypatch):
    monkeypatch.setattr(host, "HEADER_TIMEOUT_S", 0.5)
    held = _hold(port, 2) + _hold(port, 2, first_bytes=b"")  # half a request; nothing at all
    try:
        assert _closed_by_server(held, len(held)) == len(held)
        assert _status(port) == 200
    finally:
        for client in held:
            client.close()


def test_a_complete_request_is_not_cut_by_the_header_timeout(port, monkeypatch):
    """The timer covers headers only: a request whose headers arrived is answered, on a kept-alive socket too."""
    monkeypatch.setattr(host, "HEADER_TIMEOUT_S", 0.5)
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=GENEROUS_S)
    try:
        for _ in range(3):
            client.request("GET", "/sd-embeddings/v1/version")
            answer = client.getresponse()
            assert answer.status == 200 and b'"version"' in answer.read()
    finally:
        client.close()
