"""Names and values over HTTP: every refusal is a 4xx (507 for a full disk) with a one-line reason.

Inputs written at test time: files whose names are not UTF-8 (made from ``os.fsencode`` bytes), a 251-character
stem (its ``x.json`` and ``x.preview.png`` names exceed the 255-byte limit: ENAMETOOLONG from the real file
system), metadata with ``1e400``, ``NaN``, lone surrogates and over-long text. A read-only folder and a full disk
cannot be made here (the tests run as root, which writes through permission bits, and there is no disk to fill):
for those two the library's atomic writer is replaced by a fake that raises the ``OSError`` the system would
(EROFS, ENOSPC); the library turns it into its ``WriteError``, the routes into the answer.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import tempfile

import pytest
from factories import vectors, write_a1111_pt
from fastapi.testclient import TestClient
from payloads import png
from PIL import Image
from test_hostile_http import P, Site

from sd_embeddings.app import create_app
from sd_embeddings.tab import card_rows, cards

RAW_NAMES = (b"caf\xe9", b"\xff\xfe-bytes", b"ok-\xed\xa0\x80-surrogate")


@pytest.fixture
def site(tmp_path) -> Site:
    return Site(tmp_path)


@pytest.fixture
def raw(site: Site) -> Site:
    root = os.fsencode(site.root)
    good = (site.root / "good.pt").read_bytes()
    for name in RAW_NAMES:
        with open(os.path.join(root, name + b".pt"), "wb") as handle:
            handle.write(good)
    with open(os.path.join(root, RAW_NAMES[0] + b".png"), "wb") as handle:
        handle.write(png((3, 3)))
    site.library.refresh()
    site.before = site.snapshot()
    return site


def one_line(response) -> str:
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail and "Traceback" not in detail
    return detail


def test_names_that_are_not_utf8_are_listed_with_replacement_characters(raw: Site) -> None:
    response = raw.get(f"{P}/cards")
    assert response.status_code == 200
    response.content.decode("utf-8")  # strict: the answer is valid UTF-8 text
    doc = response.json()
    rows = card_rows.expand(doc)
    keywords = {row["keyword"] for row in rows}
    assert {"caf\ufffd", "\ufffd\ufffd-bytes", "ok-\ufffd\ufffd\ufffd-surrogate"} <= keywords
    preview = next(row["preview"] for row in rows if row["keyword"] == "caf\ufffd")
    shown = raw.get(preview.replace(cards.API_PREFIX, P))
    assert shown.status_code == 200 and shown.content == png((3, 3))


def test_metadata_of_a_name_that_is_not_utf8_reaches_its_own_file(raw: Site) -> None:
    card = "0/caf\ufffd.pt"
    assert raw.get(f"{P}/metadata", params={"id": card}).status_code == 200
    response = raw.post(f"{P}/metadata", content=json.dumps({"id": card, "notes": "n"}))
    assert response.status_code == 200, response.text
    assert os.path.exists(os.path.join(os.fsencode(raw.root), b"caf\xe9.json"))


def test_the_standalone_page_starts_with_such_names(raw: Site) -> None:
    client = TestClient(create_app(raw.library))
    page = client.get("/")
    assert page.status_code == 200 and "caf\ufffd" in page.text


@pytest.mark.parametrize("body, reason", [
    (b'{"id": "ID", "weight": 1e400}', "weight"),
    (b'{"id": "ID", "weight": NaN}', "weight"),
    (b'{"id": "ID", "weight": -Infinity}', "weight"),
    (b'{"id": "ID", "description": "\\ud800"}', "lone surrogate"),
    (b'{"id": "ID", "notes": "a\\udfffb"}', "lone surrogate"),
    (b'{"id": "ID", "weight": ' + b"9" * 5000 + b"}", ""),  # over Python's int digits limit: not JSON here
    (b'{"id": "ID", "weight": ' + b"9" * 4000 + b"}", "weight"),  # an int too large for a float
    (b'{"id": "ID", "weight": "' + b"9" * 4000 + b'"}', "weight"),
    (b'{"id": "ID", "description": "' + b"x" * 300_000 + b'"}', "larger than"),
])
def test_bad_values_are_a_4xx_with_a_reason(site: Site, body: bytes, reason: str) -> None:
    body = body.replace(b'"ID"', json.dumps(site.card_id("good.pt")).encode())
    response = site.post(f"{P}/metadata", content=body)
    assert 400 <= response.status_code < 500, (body[:50], response.status_code)
    assert reason in one_line(response)
    assert site.changed() == set()


def long_stem(site: Site) -> str:
    stem = "n" * 251  # x.pt fits in 255 bytes; x.json and x.preview.png do not
    write_a1111_pt(site.root / f"{stem}.pt", vectors(1, seed=77))
    site.library.refresh()
    site.before = site.snapshot()
    return site.card_id(f"{stem}.pt")


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="JPEG")
    return out.getvalue()


def test_a_name_too_long_for_its_sidecars_is_a_400(site: Site) -> None:
    card = long_stem(site)
    response = site.post(f"{P}/metadata", content=json.dumps({"id": card, "notes": "x"}))
    assert response.status_code == 400 and "too long" in one_line(response)
    upload = site.post(f"{P}/preview", params={"id": card}, content=jpeg(), headers={"content-type": "image/jpeg"})
    assert upload.status_code == 400 and "too long" in one_line(upload)
    assert site.changed() == set()


@pytest.mark.parametrize("code, status, words", [(errno.EROFS, 403, "read-only"), (errno.EACCES, 403, "read-only"),
                                                 (errno.ENOSPC, 507, "disk full"), (errno.EDQUOT, 507, "disk full")])
def test_disk_errors_say_what_happened(site: Site, monkeypatch: pytest.MonkeyPatch, code: int, status: int,
                                       words: str) -> None:
    def refuse(*args, **kwargs):  # the fake writer: what the system says for a read-only folder or a full disk
        raise OSError(code, os.strerror(code), args[0] if args else None)

    monkeypatch.setattr(tempfile, "mkstemp", lambda dir=None, **kw: refuse(os.path.join(dir or "", ".sdemb-x.tmp")))
    card = site.card_id("good.pt")
    response = site.post(f"{P}/metadata", content=json.dumps({"id": card, "notes": "x"}))
    assert response.status_code == status and words in one_line(response)
    upload = site.post(f"{P}/preview", params={"id": card}, content=jpeg(), headers={"content-type": "image/jpeg"})
    assert upload.status_code == status and words in one_line(upload)
    assert site.changed() == set()


def test_an_unexpected_error_is_a_one_line_500_and_a_log_line(site: Site, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    def explode(*args, **kwargs):
        raise RuntimeError("secret internal detail\nsecond line")

    monkeypatch.setattr(site.library, "refresh", explode)
    monkeypatch.setattr(site.library, "user_metadata", explode)
    with caplog.at_level(logging.ERROR):
        for response in (site.post(f"{P}/refresh", content=b"{}"),
                         site.get(f"{P}/metadata", params={"id": site.card_id("good.pt")})):
            assert response.status_code == 500
            detail = one_line(response)
            assert "RuntimeError" in detail and "secret internal detail" not in detail
    assert sum("secret internal detail" in (r.exc_text or "") for r in caplog.records) == 2
