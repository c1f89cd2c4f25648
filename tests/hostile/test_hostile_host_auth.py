"""The standalone host's ``--host`` policy and login (``tab/host_auth.py``, ``app.create_app``, ``serve``).

Loopback stays open; any other address needs ``--auth USER:PASS`` (HTTP Basic on every request, the page and
gradio's own routes included) or an explicit ``--no-auth`` (one warning line). On loopback a request naming a
foreign ``Host`` (DNS rebinding) is refused. The app is the real one (gradio, FastAPI) over a real folder.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from factories import vectors, write_a1111_pt
from fastapi.testclient import TestClient

from sd_embeddings import app as host
from sd_embeddings.__main__ import build_parser
from sd_embeddings.cli import serve as cli_serve
from sd_embeddings.library import Library
from sd_embeddings.tab import guard, host_auth, listen

P = "/sd-embeddings/v1"


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Library:
    root = tmp_path_factory.mktemp("auth") / "embeddings"
    root.mkdir()
    write_a1111_pt(root / "good.pt", vectors(1))
    library = Library([root], background_hashing=False)
    library.refresh()
    return library


@pytest.fixture(scope="module")
def locked(library: Library) -> TestClient:
    return TestClient(host.create_app(library, credentials=host_auth.Credentials("ann", "s3cret:x")))


@pytest.mark.parametrize("path", ["/", "/config", f"{P}/cards", f"{P}/version", f"{P}/metadata?id=0/good.pt",
                                  f"{P}/preview?root=0&path=good.png"])
def test_with_auth_every_route_needs_the_credentials(locked: TestClient, path: str) -> None:
    for headers in ({}, basic("ann", "wrong"), basic("bob", "s3cret:x"), {"authorization": "Basic !!!"},
                    {"authorization": "Bearer s3cret:x"}, basic("ann", "s3cret")):
        response = locked.get(path, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert response.headers["www-authenticate"].startswith("Basic")
    assert locked.get(path, headers=basic("ann", "s3cret:x")).status_code in (200, 404)  # 404: no such preview


def test_with_auth_writes_need_the_credentials_too(locked: TestClient, library: Library) -> None:
    page = {"content-type": "application/json", "origin": "http://testserver",
            guard.TOKEN_HEADER: guard.page_token()}
    body = json.dumps({"id": "0/good.pt", "notes": "x"})
    written = Path(library.entries[0].path).with_suffix(".json")
    assert locked.post(f"{P}/metadata", content=body, headers=page).status_code == 401
    assert not written.exists()
    assert locked.post(f"{P}/metadata", content=body, headers={**page, **basic("ann", "s3cret:x")}).status_code == 200
    assert json.loads(written.read_text())["notes"] == "x"


def test_on_loopback_a_foreign_host_name_is_refused(library: Library) -> None:
    client = TestClient(host.create_app(library, loopback_only=True), base_url="http://127.0.0.1:7861")
    assert client.get(f"{P}/version").status_code == 200
    for name in ("localhost:7861", "[::1]:7861", "127.0.0.1"):
        assert client.get(f"{P}/version", headers={"host": name}).status_code == 200, name
    for name in ("evil.example:7861", "evil.example", "127.0.0.1.evil.example", "", "[::2]:7861"):
        response = client.get(f"{P}/version", headers={"host": name})
        assert response.status_code == 403 and "localhost" in response.text, name


LOOPBACK_SPELLINGS = ["127.0.0.1", "::1", "localhost", "127.0.0.2", "LOCALHOST", "localhost.", "[::1]", " ::1 ",
                      "0:0:0:0:0:0:0:1", "127.1", "2130706433", "0x7f.1", "::ffff:127.0.0.1", "127.0.0.1."]
OTHER_SPELLINGS = ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "[::]", "0", "0:0:0:0:0:0:0:0"]
UNCLEAR_SPELLINGS = ["::1%nosuchif", "[::1", "no-such-host.invalid", "", "  ", "local host", "x" * 300]


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
def test_every_loopback_spelling_is_decided_from_the_address_bound(spelling: str) -> None:
    address = listen.resolve(spelling, 0)
    assert host_auth.listen_policy(address, None, False) == (None, None)
    with listen.bind(address) as sock:
        bound = listen.bound(sock)
        assert bound.loopback and bound.ip == address.ip  # what was decided on is what was bound
        assert host_auth.is_loopback(bound.url.split("//")[1].rpartition(":")[0])  # its own URL passes the Host check


@pytest.mark.parametrize("spelling", OTHER_SPELLINGS)
def test_any_other_address_needs_auth_or_no_auth(spelling: str) -> None:
    address = listen.resolve(spelling, 0)
    with pytest.raises(host_auth.PolicyError, match="--auth USER:PASS"):
        host_auth.listen_policy(address, None, False)
    credentials, warning = host_auth.listen_policy(address, "ann:pw", False)
    assert credentials == host_auth.Credentials("ann", "pw") and warning is None
    credentials, warning = host_auth.listen_policy(address, None, True)
    assert credentials is None and warning.startswith("warning:") and "\n" not in warning
    with pytest.raises(host_auth.PolicyError):
        host_auth.listen_policy(address, "ann", False)  # no password
    with pytest.raises(host_auth.PolicyError):
        host_auth.listen_policy(address, "ann:pw", True)


@pytest.mark.parametrize("spelling", UNCLEAR_SPELLINGS)
def test_an_unclear_host_is_refused_with_one_line_naming_it(spelling: str, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture, tmp_path) -> None:
    served: list[dict] = []
    monkeypatch.setattr(host, "serve", lambda folder, **kwargs: served.append(kwargs))
    assert cli_serve.run(build_parser().parse_args(["serve", str(tmp_path / "e"), "--host", spelling])) == 2
    err = capsys.readouterr().err
    assert served == [] and len(err.strip().splitlines()) == 1
    assert repr(spelling[:20])[:-1] in err and "give an IP address such as 127.0.0.1" in err


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS + [s for s in OTHER_SPELLINGS if s not in ("192.168.1.5",
                                                                                           "10.0.0.1")])
def test_the_command_line_serves_on_the_address_it_decided_on(spelling: str, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture, tmp_path) -> None:
    served: list[dict] = []
    monkeypatch.setattr(host, "serve", lambda folder, **kwargs: served.append(
        {**kwargs, "bound": listen.bound(kwargs["sock"])}))
    args = ["serve", str(tmp_path / "e"), "--host", spelling, "--port", "0", "--no-auth"]
    assert cli_serve.run(build_parser().parse_args(args)) == 0
    (call,) = served
    loopback = spelling in LOOPBACK_SPELLINGS
    assert call["bound"].loopback is loopback and call["host"] == call["bound"].ip
    assert call["port"] == call["bound"].port > 0
    out, err = capsys.readouterr()
    assert out.startswith(f"Textual Inversion tab: {call['bound'].url} ")
    assert ("warning:" in err) is not loopback  # --no-auth warns only where a login would be needed


def test_serve_refuses_a_public_address_without_auth(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    started: list[dict] = []
    monkeypatch.setattr(host, "create_app", lambda *args, **kwargs: started.append(kwargs))
    with pytest.raises(host_auth.PolicyError):
        host.serve(str(tmp_path / "e"), host="0.0.0.0", port=0)
    # the socket decides, whatever ``host`` claims: a caller's socket on 0.0.0.0 named "127.0.0.1" is refused
    with listen.bind(listen.resolve("0.0.0.0", 0)) as sock, pytest.raises(host_auth.PolicyError):
        host.serve(str(tmp_path / "e"), host="127.0.0.1", port=sock.getsockname()[1], sock=sock)
    assert started == []


def test_the_command_line_policy(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                 tmp_path) -> None:
    served: list[dict] = []
    monkeypatch.setattr(host, "serve", lambda folder, **kwargs: served.append(kwargs))
    parse = build_parser().parse_args
    folder = str(tmp_path / "e")

    assert cli_serve.run(parse(["serve", folder, "--host", "0.0.0.0", "--port", "0"])) == 2
    err = capsys.readouterr().err
    assert served == [] and "--auth USER:PASS" in err and len(err.strip().splitlines()) == 1

    assert cli_serve.run(parse(["serve", folder, "--host", "0.0.0.0", "--port", "0", "--no-auth"])) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and served[-1]["credentials"] is None and served[-1]["no_auth"]

    assert cli_serve.run(parse(["serve", folder, "--host", "0.0.0.0", "--port", "0", "--auth", "ann:pw"])) == 0
    assert served[-1]["credentials"] == host_auth.Credentials("ann", "pw")
    assert "warning" not in capsys.readouterr().err

    assert cli_serve.run(parse(["serve", folder, "--port", "0"])) == 0
    assert served[-1]["credentials"] is None and served[-1]["host"] == "127.0.0.1"
