"""Live: a real WebUI started with ``--api-auth`` and ``--gradio-auth`` guards every route the extension adds.

Opt-in (``WEBUI_DIR``, see conftest). API routes answer 401 without the API's Basic credentials and 200 with
them; the tab's page routes answer 401 without gradio's login cookie and 200 with it; a write with the login
but without the page token is still refused (403), and with the token taken from the page it is accepted.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

API = ("api", "api-pw")
UI = ("ui", "ui-pw")
P = "/sd-embeddings/v1"
TOKEN = re.compile(r'sd-embeddings-token\\?" content=\\?"([A-Za-z0-9_-]{20,})')


def call(server, path: str, headers: dict | None = None, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(server.url + path, data, headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def guarded(launch_webui):
    def ready(server) -> bool:
        status, body = call(server, "/sdapi/v1/embeddings", basic(*API))
        return status == 200 and "negemb" in json.loads(body)["loaded"]

    args = ["--api-auth", ":".join(API), "--gradio-auth", ":".join(UI)]
    with launch_webui(ready, port_offset=7, extra_args=args) as server:
        yield server


def login_cookie(server) -> dict:
    form = urllib.parse.urlencode({"username": UI[0], "password": UI[1]}).encode()
    request = urllib.request.Request(server.url + "/login", form,
                                     {"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=60) as response:
        cookies = [c.split(";")[0] for c in response.headers.get_all("Set-Cookie") or []]
    assert cookies, "gradio set no login cookie"
    return {"Cookie": "; ".join(cookies)}


def test_api_routes_need_the_api_credentials(guarded) -> None:
    for path in ("/sdapi/v1/embeddings", f"{P}/embeddings"):
        assert call(guarded, path)[0] == 401, path
        assert call(guarded, path, basic(API[0], "wrong"))[0] == 401, path
        status, body = call(guarded, path, basic(*API))
        assert status == 200, path
    assert any(row["keyword"] == "negemb" for row in json.loads(body)["embeddings"])


def test_page_routes_need_the_ui_login(guarded) -> None:
    card = "0/negative/negemb.safetensors"
    reads = [f"{P}/cards", f"{P}/version", f"{P}/metadata?id={urllib.parse.quote(card)}"]
    for path in reads:
        assert call(guarded, path)[0] == 401, path
        assert call(guarded, path, basic(*API))[0] == 401, path  # the API's credentials are not the UI login
    write = json.dumps({"id": card, "notes": "live"}).encode()
    page = {"Content-Type": "application/json", "Origin": guarded.url}
    assert call(guarded, f"{P}/metadata", page, write)[0] == 401
    assert call(guarded, f"{P}/refresh", page, b"{}")[0] == 401
    assert not (guarded.embeddings / "negative" / "negemb.json").exists()

    cookie = login_cookie(guarded)
    for path in reads:
        assert call(guarded, path, cookie)[0] == 200, path
    status, body = call(guarded, f"{P}/metadata", {**page, **cookie}, write)
    assert status == 403 and b"X-SD-Embeddings-Token" in body  # logged in, but not from the page
    status, config = call(guarded, "/config", cookie)
    assert status == 200
    token = TOKEN.search(config.decode()).group(1)
    status, body = call(guarded, f"{P}/metadata", {**page, **cookie, "X-SD-Embeddings-Token": token}, write)
    assert status == 200, body
    assert json.loads((guarded.embeddings / "negative" / "negemb.json").read_text())["notes"] == "live"
