"""Hostile HTTP requests and hostile names against the tab's routes (``tab/routes.py``) and the standalone host.

A FastAPI app mounts the shared router over a library in ``tmp_path`` with a secret picture and a secret text
next to (outside) the embeddings folder. Every request below must be refused without touching anything outside
the folder; every hostile name must come back escaped in HTML and exact in JSON.
"""

from __future__ import annotations

import html.parser
import inspect
import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from factories import vectors, write_a1111_pt, write_safetensors
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hostile_kit import TALLY
from payloads import png

from sd_embeddings import app as host
from sd_embeddings.__main__ import build_parser
from sd_embeddings.cli import serve as cli_serve
from sd_embeddings.library import Library
from sd_embeddings.tab import card_rows, cards, guard, shell
from sd_embeddings.tab import routes as http_routes

P = http_routes.ROUTE_PREFIX
PAGE_HEADERS = {"content-type": "application/json", "origin": "http://testserver",
                guard.TOKEN_HEADER: guard.page_token()}
"""What the tab's script sends with a write from the host's own page (TestClient's host is ``testserver``)."""
HOSTILE_NAMES = ("<img src=x onerror=alert(1)>", "\"'><script>alert(1)<\\script>", "new\nline\r<b>x",
                 "&lt;amp&gt; \u202etxt.exe", "a\"b'c`d${e}")


class Site:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.root = tmp_path / "embeddings"
        (self.root / "sub").mkdir(parents=True)
        write_a1111_pt(self.root / "good.pt", vectors(2))
        (self.root / "good.preview.png").write_bytes(png())
        write_safetensors(self.root / "sub" / "deep.safetensors", {"emb_params": vectors(1, seed=1)})
        (self.root / "sub" / "deep.png").write_bytes(png((8, 8)))
        self.secret_png = tmp_path / "secret.png"
        self.secret_png.write_bytes(png((4, 4)) + b"SECRET-PNG")
        (tmp_path / "secret.txt").write_text("SECRET-TXT")
        (tmp_path / "outside.pt").write_bytes((self.root / "good.pt").read_bytes())
        # a known entry whose preview is a link that leads out of the folder
        write_a1111_pt(self.root / "linked.pt", vectors(1, seed=2))
        os.symlink(self.secret_png, self.root / "linked.preview.png")
        # a preview picture whose content is really HTML
        write_a1111_pt(self.root / "html.pt", vectors(1, seed=3))
        (self.root / "html.preview.png").write_bytes(b"<html><script>alert(1)</script></html>")
        self.library = Library([self.root], background_hashing=False)
        self.library.refresh()
        app = FastAPI()
        app.include_router(http_routes.make_router(lambda: self.library))
        self.client = TestClient(app)
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, bytes]:
        """Every file under tmp_path (links not followed) and its bytes: writes must change only x.json."""
        files = {}
        for path in sorted(self.tmp.rglob("*")):
            if path.is_file() and not path.is_symlink():
                files[str(path.relative_to(self.tmp))] = path.read_bytes()
        return files

    def changed(self) -> set[str]:
        after = self.snapshot()
        return {name for name in self.before.keys() | after.keys() if self.before.get(name) != after.get(name)}

    def get(self, url: str, **kwargs):
        TALLY["inputs"] += 1
        return self.client.get(url, **kwargs)

    def post(self, url: str, headers: dict | None = None, **kwargs):
        """A write as the page sends it (this host's Origin, the page token), unless ``headers`` say otherwise."""
        TALLY["inputs"] += 1
        return self.client.post(url, headers={**PAGE_HEADERS, **(headers or {})}, **kwargs)

    def card_id(self, name: str) -> str:
        entry = next(e for e in self.library.entries if Path(e.path).name == name)
        return cards.card_id(self.library, entry)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def test_known_previews_are_served(site: Site) -> None:
    for root, path, size in (("0", "good.preview.png", (16, 16)), ("0", "sub/deep.png", (8, 8))):
        response = site.get(f"{P}/preview", params={"root": root, "path": path})
        assert response.status_code == 200, path
        assert response.content == png(size)
        assert response.headers["content-type"] == "image/png"
    card = next(c for c in cards.card_models(site.library) if c.keyword == "good")
    assert site.get(card.preview.replace(cards.API_PREFIX, P)).status_code == 200


TRAVERSALS = [
    "../secret.png", "../secret.txt", "sub/../../secret.png", "./good.preview.png", "sub//deep.png",
    str(Path("/etc/passwd")), "/tmp/../etc/passwd", "SECRET_ABS",  # absolute path of the secret picture
    "..%2Fsecret.png", "..%252Fsecret.png", "%2e%2e/secret.png", "%252e%252e%252fsecret.png",
    "..\\secret.png", "sub\\..\\..\\secret.png", "good.preview.png\0.png", "good.preview.png%00.png",
    "linked.preview.png",  # known preview, but a link that leads out of the folder
    "good.pt", "good.json", "sub/deep.safetensors", "secret.png", "", "sub", "sub/", ".", "..",
    "GOOD.PREVIEW.PNG/../good.preview.png", "good.preview.png/", "~/secret.png", "file:///etc/passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_preview_refuses_paths_outside_or_unknown(site: Site, path: str) -> None:
    path = str(site.secret_png) if path == "SECRET_ABS" else path
    for root in ("0", "-1", "1", "x", ""):
        response = site.get(f"{P}/preview", params={"root": root, "path": path})
        assert response.status_code == 404, (root, path, response.status_code)
        assert b"SECRET" not in response.content
    # the same path placed raw in the URL (no client-side encoding): the server decodes it once
    raw = path if path.isprintable() else quote(path, safe="/%\\")
    response = site.get(f"{P}/preview?root=0&path={raw}")
    assert response.status_code in (400, 404), path
    assert b"SECRET" not in response.content


def test_preview_refuses_encoded_traversal_in_the_url_path(site: Site) -> None:
    for raw in (f"{P}/preview/..%2F..%2Fsecret.png", f"{P}/../secret.png", f"{P}/%2e%2e/%2e%2e/secret.txt",
                f"{P}/preview?root=0&path=%2e%2e%2fsecret.png", f"{P}/preview?root=0&path=%252e%252e%252fsecret.png",
                f"{P}/preview?root=0&path=..%5csecret.png", f"{P}/preview?root=0&path=good.preview.png%00"):
        response = site.get(raw)
        assert response.status_code in (400, 404, 405), raw
        assert b"SECRET" not in response.content


def test_preview_symlinked_folder_out_is_refused(site: Site, tmp_path: Path) -> None:
    """A sub-folder that is a link out is not walked (listed as skipped); one swapped for a link out after the
    scan still has its preview refused: the real path is checked when the file is opened."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_a1111_pt(elsewhere / "far.pt", vectors(1, seed=5))
    (elsewhere / "far.preview.png").write_bytes(png((5, 5)) + b"SECRET-FAR")
    os.symlink(elsewhere, site.root / "linkdir")
    site.library.refresh()
    assert not any(e.keyword == "far" for e in site.library.entries)
    assert [s.relpath for s in site.library.skipped] == ["linkdir"]
    response = site.get(f"{P}/preview", params={"root": "0", "path": "linkdir/far.preview.png"})
    assert response.status_code == 404
    os.unlink(site.root / "linkdir")
    shutil.copytree(elsewhere, site.root / "linkdir")
    site.library.refresh()
    assert any(e.keyword == "far" for e in site.library.entries)
    shutil.rmtree(site.root / "linkdir")
    os.symlink(elsewhere, site.root / "linkdir")
    response = site.get(f"{P}/preview", params={"root": "0", "path": "linkdir/far.preview.png"})
    assert response.status_code == 404
    assert b"SECRET" not in response.content


def test_preview_serves_only_pictures_and_never_sniffable_html(site: Site) -> None:
    response = site.get(f"{P}/preview", params={"root": "0", "path": "html.preview.png"})
    # HTML under a picture's name is not a picture: not served at all, with the reason
    assert response.status_code == 404
    assert "not a PNG, JPEG, WebP, GIF or AVIF picture" in response.json()["detail"]
    assert b"<script>" not in response.content
    for name in ("good.pt", "sub/deep.safetensors", "good.txt"):
        assert site.get(f"{P}/preview", params={"root": "0", "path": name}).status_code == 404


def _post(site: Site, body: object, **kwargs):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return site.post(f"{P}/metadata", content=data, headers={"content-type": "application/json"}, **kwargs)


def test_metadata_write_goes_only_to_the_json_beside_the_entry(site: Site) -> None:
    response = _post(site, {"id": site.card_id("good.pt"), "description": "hello", "notes": "n", "weight": 0.8,
                            "target": "negative", "filename": "../evil.json", "path": "/tmp/evil",
                            "keyword": "renamed", "__proto__": {"x": 1}})
    assert response.status_code == 200
    assert site.changed() == {"embeddings/good.json"}
    written = json.loads((site.root / "good.json").read_text())
    assert written == {"description": "hello", "notes": "n", "preferred weight": 0.8, "target": "negative"}
    assert (site.root / "good.pt").read_bytes() == site.before["embeddings/good.pt"]


@pytest.mark.parametrize("card_id", [
    "0/../outside.pt", "0/../../etc/passwd", "1/good.pt", "-1/good.pt", "0/missing.pt", "0/good.json",
    "0/good.preview.png", "0//good.pt", "0/./good.pt", "0/GOOD.PT", "0\\good.pt", "0/good.pt\0", "good.pt", "",
    None, 0, ["0/good.pt"], {"id": "0/good.pt"}, "0/%2e%2e/outside.pt", "0/sub/../good.pt",
])
def test_metadata_write_refuses_unknown_entries(site: Site, card_id: object) -> None:
    response = _post(site, {"id": card_id, "description": "x"})
    assert response.status_code == 404, card_id
    assert site.changed() == set()
    assert site.get(f"{P}/metadata", params={"id": str(card_id)}).status_code == 404


@pytest.mark.parametrize("body", [
    b"", b"not json", b"{", b"[]", b"null", b"42", b'"0/good.pt"', b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000,
    b'{"id": "0/good.pt", "description": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    {"id": "ID", "weight": "nan"}, {"id": "ID", "weight": "inf"}, {"id": "ID", "weight": 1e309},
    {"id": "ID", "weight": "1e400"}, {"id": "ID", "weight": 101}, {"id": "ID", "weight": [1]},
    {"id": "ID", "weight": {"a": 1}}, {"id": "ID", "target": "../x"}, {"id": "ID", "target": None},
    {"id": "ID", "description": 5}, {"id": "ID", "notes": ["a"]}, {"id": "ID", "description": {"a": "b"}},
])
def test_metadata_write_refuses_invalid_bodies(site: Site, body: object) -> None:
    if isinstance(body, dict):
        body = json.dumps(body).replace('"ID"', json.dumps(site.card_id("good.pt")))
    response = _post(site, body)
    assert response.status_code in (400, 404, 413, 422), (body[:40], response.status_code)
    assert site.changed() == set()


def test_metadata_write_refuses_oversized_bodies(site: Site) -> None:
    card = site.card_id("good.pt")
    huge = json.dumps({"id": card, "description": "x" * (http_routes.BODY_LIMIT + 1)})
    assert _post(site, huge).status_code == 413
    # a body that lies about its length, and one sent in pieces with no length at all
    response = site.post(f"{P}/metadata", content=huge.encode(),
                         headers={"content-type": "application/json", "content-length": "10"})
    assert response.status_code in (400, 413)

    def pieces():
        yield b'{"id": ' + json.dumps(card).encode() + b', "notes": "'
        for _ in range(http_routes.BODY_LIMIT // 65536 + 2):
            yield b"y" * 65536
        yield b'"}'

    assert site.post(f"{P}/metadata", content=pieces(), headers={"content-type": "application/json"}
                     ).status_code == 413
    assert site.changed() == set()
    # long text that fits is kept, capped
    fits = _post(site, {"id": card, "description": "z" * (http_routes.TEXT_LIMIT + 500)})
    assert fits.status_code == 200
    assert len(json.loads((site.root / "good.json").read_text())["description"]) == http_routes.TEXT_LIMIT


def test_metadata_write_never_follows_a_link_out(site: Site) -> None:
    """``x.json`` as a link to a file outside: the link is replaced, the outside file is untouched."""
    outside = site.tmp / "outside.json"
    outside.write_text("{}")
    os.symlink(outside, site.root / "linked.json")
    site.library.refresh()
    assert _post(site, {"id": site.card_id("linked.pt"), "description": "d"}).status_code == 200
    assert outside.read_text() == "{}"
    assert not (site.root / "linked.json").is_symlink()


class Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(markup: str) -> Tags:
    tags = Tags()
    tags.feed(markup)
    tags.close()
    return tags


def assert_inert(markup: str) -> Tags:
    tags = parse(markup)
    assert not {tag for tag, _ in tags.tags} & {"script", "iframe", "svg", "b", "i", "object", "embed", "textarea"}
    for tag, attrs in tags.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert tag != "img" or "sdemb-preview" in (attrs.get("class") or ""), attrs
    return tags


@pytest.fixture
def named(tmp_path: Path) -> Site:
    site = Site(tmp_path)
    for i, name in enumerate(HOSTILE_NAMES):
        write_a1111_pt(site.root / f"{name}.pt", vectors(1, seed=10 + i))
    evil_folder = site.root / "<"  # with the file name below, the relative path reads "</script>..."
    evil_folder.mkdir()
    write_a1111_pt(evil_folder / "script><svg onload=alert(1)>.pt", vectors(1, seed=30))
    site.library.refresh()
    return site


def inert_shell(pane: str) -> dict:
    """The shell around the inline cards document is inert; the document's text has no ``<``, ``>`` or ``&``, so
    it cannot close its ``<script type="application/json">``. Returns the document."""
    markup, _, rest = pane.partition('<script type="application/json" class="sdemb-doc">')
    text, _, tail = rest.partition("</script>")
    assert_inert(markup + tail)
    assert text and not set(text) & set("<>&")
    return json.loads(text)


def test_shell_carries_hostile_names_inert_and_exact(named: Site) -> None:
    """Cards are drawn by the script only (hostile names as text in Chromium: tests/browser/test_first_paint.py);
    the server's shell carries them in the inline JSON, exactly."""
    library = named.library
    keywords = {e.keyword for e in library.entries}
    assert set(HOSTILE_NAMES) <= keywords
    doc = inert_shell(shell.pane_html(library, "txt2img"))
    rows = card_rows.expand(doc)
    assert set(HOSTILE_NAMES) <= {row["keyword"] for row in rows}
    assert "</script><svg onload=alert(1)>.pt" in {row["relpath"] for row in rows}


def test_descriptions_written_over_http_are_escaped_when_rendered(named: Site) -> None:
    hostile = "</textarea></script><script>alert(1)</script><img src=x onerror=alert(2)>"
    card = named.card_id(f"{HOSTILE_NAMES[0]}.pt")
    assert _post(named, {"id": card, "description": hostile, "notes": hostile}).status_code == 200
    named.library.refresh()
    doc = inert_shell(shell.pane_html(named.library))
    assert hostile[:cards.DESCRIPTION_LIMIT] in {card["description"] for card in card_rows.expand(doc)}
    shown = next(c for c in cards.card_models(named.library) if c.card_id == card)
    assert shown.description == hostile[:cards.DESCRIPTION_LIMIT]
    body = named.get(f"{P}/metadata", params={"id": card}).json()
    assert body["metadata"]["notes"] == hostile and body["card"]["keyword"] == HOSTILE_NAMES[0]


def test_json_routes_carry_names_exactly_as_json(named: Site) -> None:
    for route in ("/cards",):
        response = named.get(P + route)
        assert response.headers["content-type"] == "application/json"
        payload = response.json()
        shown = {card["keyword"] for card in card_rows.expand(payload)}
        assert set(HOSTILE_NAMES) <= shown
    refreshed = named.post(f"{P}/refresh")
    assert refreshed.headers["content-type"] == "application/json" and refreshed.json()["cards"]


def test_encode_report_html_escapes_names_and_warnings() -> None:
    name = HOSTILE_NAMES[0]
    side = {"chunks": [{"tokens": 3, "text": name}], "embeddings": [{"name": name, "vectors": 1, "weight": 1,
                                                                    "shorthash": "<i>"}],
            "warnings": [name], "ti_hashes": f"{name}: abc", "shape": f"[1, 77, {name}]", "checksum": name}
    markup = host.report_html({"positive": side, "negative": side, "warnings": [name]})
    tags = assert_inert(markup)
    assert name not in markup and name in "".join(tags.text)


def test_host_binds_to_localhost_unless_told(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert inspect.signature(host.serve).parameters["host"].default == "127.0.0.1"
    args = build_parser().parse_args(["serve", str(tmp_path / "e"), "--port", "0"])
    assert args.host == "127.0.0.1" and args.func is cli_serve.run
    assert build_parser().parse_args(["serve", "--host", "0.0.0.0"]).host == "0.0.0.0"

    import uvicorn

    served: list[dict] = []
    monkeypatch.setattr(host, "serve", lambda folder, **kwargs: served.append(kwargs))
    assert cli_serve.run(args) == 0
    assert served[-1]["host"] == "127.0.0.1"
    monkeypatch.undo()

    calls: list[tuple] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets: calls.append(
        (server.config.host, sockets[0].getsockname()[0])))
    monkeypatch.setattr(host, "create_app", lambda library, *args, **kwargs: object())
    host.serve(str(tmp_path / "e"), host="::1", port=0)
    assert calls[-1] == ("::1", "::1")


def test_a_request_looks_its_entry_up_without_a_pass_over_the_library(tmp_path: Path) -> None:
    """A page of N cards asks for N previews; each used to compare N names (the page cost N**2). After the first
    request of a library version, finding a card or a preview costs the same in 40 entries as in 400 (counted)."""
    from work_count import lines_run

    from sd_embeddings.tab.routes import _entry_for, safe_preview_path

    def work(count: int) -> tuple[int, int]:
        root = tmp_path / f"lib{count}"
        for i in range(count):
            write_a1111_pt(root / f"e{i:04d}.pt", vectors(1, seed=i))
            (root / f"e{i:04d}.preview.png").write_bytes(png((4, 4)))
        library = Library([root], background_hashing=False)
        library.refresh()
        last = f"e{count - 1:04d}"
        assert _entry_for(library, f"0/{last}.pt").keyword == last
        assert safe_preview_path(library, "0", f"{last}.preview.png")
        return (lines_run(_entry_for, library, f"0/{last}.pt"),
                lines_run(safe_preview_path, library, "0", f"{last}.preview.png"))

    small, large = work(40), work(400)
    assert large[0] <= small[0] + 5 and large[1] <= small[1] + 5, (small, large)
