"""Clickjacking: no other site may frame the standalone page or any answer of our routes (a framed page keeps its
token and same-origin writes, so tricked clicks could refresh or save). The standalone host sends
``Content-Security-Policy: frame-ancestors 'self'`` and ``X-Frame-Options: SAMEORIGIN`` on every answer; inside the
WebUI only our routes do (the WebUI's own pages are left as they are). Real apps (gradio page, our router) over a
real library; the browser check is ``tests/browser/test_framed_host.py``."""

from __future__ import annotations

import base64

import pytest
from factories import vectors, write_a1111_pt
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sd_embeddings import app as host
from sd_embeddings.library import Library
from sd_embeddings.tab import host_auth
from sd_embeddings.tab.routes import make_router

V1 = "/sd-embeddings/v1"


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Library:
    folder = tmp_path_factory.mktemp("framing") / "embeddings"
    write_a1111_pt(folder / "goodemb.pt", vectors(2))
    (folder / "goodemb.preview.png").write_bytes(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="))
    library = Library([folder], background_hashing=False)
    library.refresh()
    return library


@pytest.fixture(scope="module")
def open_host(library: Library):
    with TestClient(host.create_app(library)) as client:
        yield client


def assert_not_framable(response) -> None:
    policy = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'self'" in policy, (response.request.url, response.status_code, policy)
    assert response.headers.get("x-frame-options") == "SAMEORIGIN", response.request.url


@pytest.mark.parametrize("path", ["/", "/config", "/no-such-page", f"{V1}/cards", f"{V1}/version",
                                  f"{V1}/metadata?id=nope", f"{V1}/preview?root=0&path=goodemb.preview.png",
                                  f"{V1}/preview?root=0&path=../x.png"])
def test_every_answer_of_the_standalone_host(open_host, path):
    assert_not_framable(open_host.get(path))


def test_refusals_of_the_login_and_of_writes_too(library):
    with TestClient(host.create_app(library, credentials=host_auth.Credentials("ann", "pw"))) as client:
        refused = client.get("/")
        assert refused.status_code == 401
        assert_not_framable(refused)
        token = base64.b64encode(b"ann:pw").decode()
        write = client.post(f"{V1}/refresh", headers={"authorization": f"Basic {token}"}, content=b"{}")
        assert write.status_code == 403
        assert_not_framable(write)


def test_a_preview_keeps_its_sandbox(open_host):
    served = open_host.get(f"{V1}/preview", params={"root": 0, "path": "goodemb.preview.png"})
    assert served.status_code == 200
    assert served.headers["content-security-policy"].startswith("default-src 'none'; sandbox")


def test_inside_a_webui_only_our_routes_change(library):
    """A FastAPI app standing in for the WebUI's (its own page route) with our router included."""
    webui = FastAPI()
    webui.add_api_route("/webui-page", lambda: {"page": "the WebUI's"}, methods=["GET"])
    webui.include_router(make_router(lambda: library))
    with TestClient(webui) as client:
        for path in (f"{V1}/cards", f"{V1}/version", f"{V1}/metadata?id=nope"):
            assert_not_framable(client.get(path))
        assert_not_framable(client.post(f"{V1}/refresh", content=b"{}"))
        own = client.get("/webui-page")
        assert own.status_code == 200
        assert "x-frame-options" not in own.headers and "content-security-policy" not in own.headers
