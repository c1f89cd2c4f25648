"""Cross-site writes (``tab/guard.py``): what a page on another site can make a browser send is refused.

Each request below is one a hostile page can produce: a ``<form>`` post (``text/plain``, urlencoded, multipart),
a ``no-cors`` fetch (``text/plain;charset=UTF-8``, no custom header), a CORS fetch from another origin (gradio
lets any ``localhost`` origin in), a sandboxed frame (``Origin: null``), a request stripped of Origin and Referer,
and the host's own origin without (or with a wrong) page token. Every one gets 403 with a one-line reason and
leaves every file under ``tmp_path`` byte for byte as it was; the page's own request is accepted.
"""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from test_hostile_http import PAGE_HEADERS, P, Site

from sd_embeddings.app import create_app
from sd_embeddings.tab import guard

OWN = "http://testserver"
TOKEN = guard.page_token()


@pytest.fixture
def site(tmp_path) -> Site:
    return Site(tmp_path)


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, format="JPEG")
    return out.getvalue()


def writes(site: Site) -> dict[str, tuple[str, bytes, str]]:
    """Each state-changing route: (url, body, the content type the page uses)."""
    card = site.card_id("good.pt")
    return {"metadata": (f"{P}/metadata", json.dumps({"id": card, "description": "PWNED"}).encode(),
                         "application/json"),
            "upload": (f"{P}/preview?id={card}", jpeg(), "image/jpeg"),
            "refresh": (f"{P}/refresh", b"{}", "application/json")}


ATTACKS = {
    "text/plain form": {"content-type": "text/plain", "origin": "http://evil.example"},
    "urlencoded form": {"content-type": "application/x-www-form-urlencoded", "origin": "http://evil.example"},
    "multipart form": {"content-type": "multipart/form-data; boundary=x", "origin": "http://evil.example"},
    "no-cors fetch": {"content-type": "text/plain;charset=UTF-8", "origin": "https://evil.example",
                      "referer": "https://evil.example/page", guard.TOKEN_HEADER: ""},
    "foreign origin with the right type and a stolen token": {"origin": "http://evil.example"},
    "another localhost port": {"origin": "http://localhost:3000"},
    "same host name, other port": {"origin": "http://testserver:8080"},
    "sandboxed frame": {"origin": "null"},
    "file page": {"origin": "file://"},
    "no origin, foreign referer": {"origin": None, "referer": "http://evil.example/x"},
    "no origin, no referer": {"origin": None},
    "own origin, no token": {guard.TOKEN_HEADER: None},
    "own origin, wrong token": {guard.TOKEN_HEADER: "x" * len(TOKEN)},
    "own origin, token of another case": {guard.TOKEN_HEADER: TOKEN.swapcase()},
    "credentials in the origin": {"origin": "http://testserver@evil.example"},
    # the content type alone refuses a form, even one that would pass the other two checks
    "form type from this origin": {"content-type": "text/plain"},
    "multipart from this origin": {"content-type": "multipart/form-data; boundary=x"},
}


def send(site: Site, route: str, overrides: dict):
    url, body, kind = writes(site)[route]
    headers = {**PAGE_HEADERS, "content-type": kind, **overrides}
    headers = {key: value for key, value in headers.items() if value is not None}
    site.client.headers.clear()
    return site.client.post(url, content=body, headers=headers)


@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("route", ["metadata", "upload", "refresh"])
def test_cross_site_writes_are_refused_and_change_nothing(site: Site, route: str, attack: str) -> None:
    refreshes: list[int] = []
    site.library.listeners.append(lambda library: refreshes.append(1))
    response = send(site, route, ATTACKS[attack])
    assert response.status_code == 403, (route, attack, response.status_code, response.text)
    detail = response.json()["detail"]
    assert detail.startswith("refused: ") and "\n" not in detail
    assert site.changed() == set()
    assert not (site.root / "good.json").exists()
    assert refreshes == []  # not even a rescan


@pytest.mark.parametrize("route", ["metadata", "upload", "refresh"])
def test_the_pages_own_writes_are_accepted(site: Site, route: str) -> None:
    assert send(site, route, {}).status_code == 200
    # a browser that sends no Origin on a same-origin request still sends the page as Referer
    assert send(site, route, {"origin": None, "referer": f"{OWN}/?__theme=dark"}).status_code == 200
    # a TLS proxy in front of the host: the scheme differs, the host and port are the same
    assert send(site, route, {"origin": "https://testserver:443", "host": "testserver"}).status_code == 200


def test_the_token_is_made_once_per_process_and_is_in_the_page() -> None:
    assert guard.page_token() == TOKEN and len(TOKEN) >= 32
    assert f'content="{TOKEN}"' in guard.token_meta_html()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    root = tmp_path_factory.mktemp("host") / "embeddings"
    root.mkdir()
    from sd_embeddings.library import Library

    library = Library([root], background_hashing=False)
    library.refresh()
    return TestClient(create_app(library))


def test_the_standalone_page_carries_the_token_and_no_origin_may_read_it(host: TestClient) -> None:
    page = host.get("/", headers={"origin": "http://localhost:3000"})
    assert page.status_code == 200 and TOKEN in page.text  # gradio carries ``head`` in its inline config
    # gradio's own CORS would let a localhost origin read the page (and its token) with credentials
    assert "access-control-allow-origin" not in page.headers
    preflight = host.options(f"{P}/metadata", headers={
        "origin": "http://localhost:3000", "access-control-request-method": "POST",
        "access-control-request-headers": f"content-type,{guard.TOKEN_HEADER}"})
    assert preflight.headers.get("access-control-allow-origin") is None


def test_gradios_own_upload_takes_no_cross_site_post(host: TestClient) -> None:
    """gradio's /upload writes any form post to disk; a page of another site (Origin set) is refused there too,
    while the page's own requests (same Origin) and clients that send none (scripts, curl) are not."""
    files = {"files": ("x.bin", b"A" * 1024, "application/octet-stream")}
    upload = "/gradio_api/upload"
    foreign = host.post(upload, files=files, headers={"origin": "http://evil.example"})
    assert foreign.status_code == 403 and "another site" in foreign.text
    assert host.post(upload, files=files, headers={"origin": "null"}).status_code == 403
    assert host.post(upload, files=files, headers={"origin": "http://testserver"}).status_code == 200
    assert host.post(upload, files=files).status_code == 200
