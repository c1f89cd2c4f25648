"""Every route the extension adds inside the WebUI is guarded like the WebUI's own routes of its kind.

Strict fake of the WebUI's auth surface (the real WebUI and gradio 3.41 cannot be installed here; the live check
is ``tests/integration/test_auth.py``): ``webui_app`` builds a FastAPI app holding only what the extension
touches, with the semantics of

- gradio 3.41's ``routes.App``: ``auth`` (``{user: password}`` or None), ``tokens`` (session cookie -> user),
  ``POST /login`` (form fields ``username``/``password``; sets the ``access-token`` cookie) and
  ``GET /login_check`` (401 "Not authenticated" unless ``auth`` is None or the ``access-token`` /
  ``access-token-unsecure`` cookie names a session), the dependency gradio guards ``/config``, ``/file=`` and
  uploads with;
- A1111 1.10.1's ``modules/api/api.py``: with ``--api-auth user:pass[,user:pass]`` each ``/sdapi/v1/*`` route is
  added with a dependency on ``Api.auth`` (``HTTPBasic``; 401 "Incorrect username or password" otherwise).

401 without credentials, 200 with, for each route: the API routes need the API's Basic credentials, the page
routes (cards, version, previews, metadata read/write, inspector, refresh, upload) gradio's login cookie.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets

import pytest
import torch
from factories import vectors, write_a1111_pt
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from fastapi.testclient import TestClient
from PIL import Image

from sd_embeddings.tab import guard
from sd_embeddings.webui import entry, first_scan

P = "/sd-embeddings/v1"
API_USER, API_PASSWORD = "api", "api-secret"
UI_USER, UI_PASSWORD = "ui", "ui-secret"


def webui_app(api_auth: str | None, gradio_auth: dict | None) -> FastAPI:
    app = FastAPI()
    app.auth, app.tokens = gradio_auth, {}

    def get_current_user(request: Request) -> str | None:
        token = request.cookies.get("access-token") or request.cookies.get("access-token-unsecure")
        return app.tokens.get(token)

    @app.get("/login_check")
    def login_check(user: str = Depends(get_current_user)) -> None:  # noqa: B008
        if app.auth is None or user is not None:
            return
        raise HTTPException(status_code=401, detail="Not authenticated")

    @app.post("/login")
    def login(username: str = Form(...), password: str = Form(...)) -> JSONResponse:  # noqa: B008
        if app.auth is None or app.auth.get(username) != password:
            raise HTTPException(status_code=400, detail="Incorrect credentials.")
        token = secrets.token_urlsafe(16)
        app.tokens[token] = username
        response = JSONResponse({"success": True})
        response.set_cookie("access-token-unsecure", token, httponly=True)
        return response

    accounts = dict(pair.split(":") for pair in api_auth.split(",")) if api_auth else {}

    def api_auth_dependency(credentials: HTTPBasicCredentials = Depends(HTTPBasic())) -> bool:  # noqa: B008
        if accounts.get(credentials.username) == credentials.password:
            return True
        raise HTTPException(status_code=401, detail="Incorrect username or password",
                            headers={"WWW-Authenticate": "Basic"})

    dependencies = [Depends(api_auth_dependency)] if api_auth else []
    app.add_api_route("/sdapi/v1/embeddings", lambda: {"loaded": {}, "skipped": {}}, methods=["GET"],
                      dependencies=dependencies)
    return app


@pytest.fixture
def mounted(webui):
    """The extension registered against the fake WebUI, with one embedding; ``mount(api_auth, gradio_auth)``."""
    webui.opts.data["sd_embeddings_watch"] = False
    webui.hijack.embedding_db.embedding_dirs = {str(webui.folder): None}
    write_a1111_pt(webui.folder / "one.pt", vectors(1))
    (webui.folder / "one.png").write_bytes(picture())
    entry.state.db = entry.state.original_db = entry.state.host = None
    entry.register()

    def mount(api_auth: str | None = None, gradio_auth: dict | None = None) -> TestClient:
        webui.modules["modules.shared"].cmd_opts.api_auth = api_auth
        app = webui_app(api_auth, gradio_auth)
        for callback in webui.callbacks["app_started"]:
            callback(None, app)
        return TestClient(app)

    yield mount
    entry.uninstall()
    entry.state.db = entry.state.host = None


def picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 9, 9)).save(out, format="PNG")
    return out.getvalue()


def basic(user: str, password: str) -> dict:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


PAGE_WRITE = {"origin": "http://testserver", guard.TOKEN_HEADER: guard.page_token()}


def page_requests() -> list[tuple[str, str, dict]]:
    """(method, url, request kwargs) of every page route, as the tab's script sends it."""
    meta = json.dumps({"id": "0/one.pt", "notes": "n"})
    return [("GET", f"{P}/cards", {}), ("GET", f"{P}/version", {}),
            ("GET", f"{P}/preview?root=0&path=one.png", {}), ("GET", f"{P}/metadata?id=0/one.pt", {}),
            ("GET", f"{P}/inspect?id=0/one.pt", {}),
            ("POST", f"{P}/metadata", {"content": meta, "headers": {**PAGE_WRITE, "content-type": "application/json"}}),
            ("POST", f"{P}/refresh", {"content": "{}", "headers": {**PAGE_WRITE, "content-type": "application/json"}}),
            ("POST", f"{P}/preview?id=0/one.pt", {"content": picture(),
                                                  "headers": {**PAGE_WRITE, "content-type": "image/png"}})]


API_ROUTES = ("/sdapi/v1/embeddings", f"{P}/embeddings")


def test_api_auth_guards_the_api_routes(mounted) -> None:
    client = mounted(api_auth=f"other:x,{API_USER}:{API_PASSWORD}")
    for path in API_ROUTES:
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=basic(API_USER, "wrong")).status_code == 401, path
        assert client.get(path, headers=basic(API_USER, API_PASSWORD)).status_code == 200, path
    own = client.get(f"{P}/embeddings", headers=basic(API_USER, API_PASSWORD)).json()
    assert [row["keyword"] for row in own["embeddings"]] == ["one"]
    # the page routes are the WebUI's page routes: open when there is no gradio login
    for method, url, kwargs in page_requests():
        assert client.request(method, url, **kwargs).status_code == 200, url


def test_gradio_auth_guards_every_page_route(mounted, webui) -> None:
    client = mounted(gradio_auth={UI_USER: UI_PASSWORD})
    before = sorted(p.name for p in webui.folder.iterdir())
    for method, url, kwargs in page_requests():
        response = client.request(method, url, **kwargs)
        assert response.status_code == 401, (method, url, response.status_code)
    assert sorted(p.name for p in webui.folder.iterdir()) == before  # no x.json, no x.preview.png
    assert client.get(f"{P}/embeddings").status_code == 401  # absolute paths: never open when the UI has a login
    assert client.post("/login", data={"username": UI_USER, "password": "nope"}).status_code == 400
    assert client.post("/login", data={"username": UI_USER, "password": UI_PASSWORD}).status_code == 200
    for method, url, kwargs in page_requests():
        response = client.request(method, url, **kwargs)
        assert response.status_code == 200, (method, url, response.status_code, response.text)
    assert client.get(f"{P}/embeddings").status_code == 200


def test_both_flags(mounted) -> None:
    client = mounted(api_auth=f"{API_USER}:{API_PASSWORD}", gradio_auth={UI_USER: UI_PASSWORD})
    for path in API_ROUTES:
        assert client.get(path).status_code == 401
        assert client.get(path, headers=basic(API_USER, API_PASSWORD)).status_code == 200
    assert client.get(f"{P}/cards", headers=basic(API_USER, API_PASSWORD)).status_code == 401
    client.post("/login", data={"username": UI_USER, "password": UI_PASSWORD})
    assert client.get(f"{P}/cards").status_code == 200


def test_without_any_flag_everything_stays_open(mounted) -> None:
    client = mounted()
    for path in API_ROUTES:
        assert client.get(path).status_code == 200
    assert client.get(f"{P}/cards").status_code == 200


def test_the_core_listing_answers_during_the_first_scan_and_is_whole_after_it(mounted) -> None:
    """Asked right after start (the first scan may still run): an answer at once, which says ``scanning`` while
    it is partial; once the scan is done the listing is the scan's (the partial listing itself:
    ``test_listing_cost.test_the_listing_answers_while_the_first_scan_is_still_reading``)."""
    client = mounted()
    first = client.get("/sdapi/v1/embeddings").json()
    assert "scanning" not in first or first["scanning"] is True
    first_scan.begin(entry.database()).join(60)
    listing = client.get("/sdapi/v1/embeddings").json()
    assert list(listing["loaded"]) == ["one"] and "scanning" not in listing


def test_api_listings_carry_names_that_are_not_utf8(mounted, webui) -> None:
    good = (webui.folder / "one.pt").read_bytes()
    with open(os.path.join(os.fsencode(webui.folder), b"caf\xe9.pt"), "wb") as handle:
        handle.write(good)
    client = mounted()
    webui.load_model(768)
    entry.database().load_textual_inversion_embeddings(force_reload=True)
    for path in API_ROUTES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "caf\ufffd" in response.content.decode("utf-8")  # strict UTF-8, the name shown with U+FFFD


def test_listings_are_encoded_once_in_c_not_walked_by_fastapi(mounted, webui, monkeypatch) -> None:
    """FastAPI's ``jsonable_encoder`` walks a returned dict value by value in Python (most of a 10,000-item
    listing's time); the listings come back as ready responses, so it never sees them. A bundle's odd ``step``
    (any pickled type) still lists, as a plain JSON value."""
    import fastapi.routing

    walked = []
    original = fastapi.routing.jsonable_encoder
    monkeypatch.setattr(fastapi.routing, "jsonable_encoder", lambda *a, **k: walked.append(a) or original(*a, **k))
    client = mounted()
    webui.load_model(768)
    db = entry.database()
    db.load_textual_inversion_embeddings(force_reload=True)
    bundled = webui.modules["modules.textual_inversion.textual_inversion"].Embedding(vectors(1), "bundled", step=7.0)
    bundled.step, bundled.sd_checkpoint, bundled.sd_checkpoint_name = torch.tensor(12), float("nan"), torch.ones(2)
    db.register_embedding_by_name(bundled, None, "bundled")
    for path in API_ROUTES:
        assert client.get(path).status_code == 200, path
    assert walked == []
    listing = client.get("/sdapi/v1/embeddings").json()
    assert listing["loaded"]["one"]["vectors"] == 1
    assert listing["loaded"]["bundled"]["step"] == 12 and listing["loaded"]["bundled"]["sd_checkpoint"] is None
    assert listing["loaded"]["bundled"]["sd_checkpoint_name"] == str(torch.ones(2))
