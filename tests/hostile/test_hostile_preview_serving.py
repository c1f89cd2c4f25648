"""Previews are served only when their bytes are a picture (``tab/preview_serving.py``).

Every input is written here at test time: a picture name that is really a link to an SVG or an HTML page inside
the folder, a link leading out, a FIFO, a character device, and real PNG/JPEG/GIF/WebP/AVIF bytes under names
that do not match their type. A picture is served with its sniffed type, ``nosniff`` and a sandboxing CSP;
anything else is a 404 with a one-line reason, and nothing of the non-picture is sent.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from pathlib import Path

import pytest
from factories import vectors, write_a1111_pt
from httpx import Response
from PIL import Image
from test_hostile_http import P, Site

from sd_embeddings.tab import preview_serving

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)"><script>alert(1)</script></svg>'
HTML = b"<!doctype html><html><body><script>fetch('/sd-embeddings/v1/metadata')</script></body></html>"
CSP = "default-src 'none'; sandbox; frame-ancestors 'self'"  # framing.py adds the last part


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def encoded(fmt: str, size: tuple[int, int] = (6, 5)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, format=fmt)
    return out.getvalue()


def avif_header() -> bytes:
    """The first box of an AVIF file (``ftyp`` with the ``avif`` brand): enough for the sniffer, not for Pillow."""
    brands = b"avif" + b"\0\0\0\0" + b"avifmif1miaf"
    return struct.pack(">I", 8 + len(brands)) + b"ftyp" + brands + b"\0" * 64


def preview_of(site: Site, stem: str, name: str) -> Path:
    """An embedding ``stem.pt`` whose preview is ``name``; returns the preview's path (not yet created)."""
    write_a1111_pt(site.root / f"{stem}.pt", vectors(1, seed=len(stem)))
    return site.root / name


def fetch(site: Site, name: str):
    site.library.refresh()
    return site.get(f"{P}/preview", params={"root": "0", "path": name})


def assert_refused(response, reason: str) -> None:
    assert response.status_code == 404, response.status_code
    detail = response.json()["detail"]
    assert reason in detail and "\n" not in detail
    assert b"<script>" not in response.content and b"<svg" not in response.content


@pytest.mark.parametrize("target, body", [("x.svg", SVG), ("page.html", HTML)])
def test_a_picture_name_linked_to_script_inside_the_folder_is_not_served(site: Site, target: str,
                                                                         body: bytes) -> None:
    (site.root / target).write_bytes(body)
    os.symlink(target, preview_of(site, "x", "x.png"))
    assert_refused(fetch(site, "x.png"), "not a PNG, JPEG, WebP, GIF or AVIF picture")


@pytest.mark.parametrize("body", [SVG, HTML, b"GIF8", b"\x89PNG", b"", b"RIFF\0\0\0\0WEBX" + b"\0" * 20])
def test_bytes_that_are_not_a_picture_are_not_served(site: Site, body: bytes) -> None:
    preview_of(site, "y", "y.preview.webp").write_bytes(body)
    assert_refused(fetch(site, "y.preview.webp"), "not a PNG, JPEG, WebP, GIF or AVIF picture")


def swapped_for(site: Site, stem: str, make) -> Response:
    """A preview that was a picture when scanned and is something else when fetched."""
    path = preview_of(site, stem, f"{stem}.preview.png")
    path.write_bytes(encoded("PNG"))
    site.library.refresh()
    path.unlink()
    make(path)
    return site.get(f"{P}/preview", params={"root": "0", "path": path.name})


def make_device(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # like /dev/zero
    except PermissionError:
        pytest.skip("this system does not allow creating a device node")


@pytest.mark.parametrize("make", [os.mkfifo, make_device], ids=["fifo", "device"])
def test_a_fifo_or_device_is_refused_without_blocking(site: Site, make) -> None:
    response = swapped_for(site, "f", make)
    assert response.status_code == 404 and "\n" not in response.json()["detail"]
    # the same file handed to the server's opener (the moment after any earlier check): refused, never read
    with pytest.raises(preview_serving.NotServable, match="not a regular file"):
        preview_serving.open_preview(str(site.root / "f.preview.png"))


def test_a_link_out_of_the_folder_is_refused_even_to_a_picture(site: Site) -> None:
    os.symlink(site.secret_png, preview_of(site, "z", "z.png"))
    response = fetch(site, "z.png")
    assert response.status_code == 404 and b"SECRET" not in response.content


@pytest.mark.parametrize("name, data, kind", [
    ("p.png", encoded("PNG"), "image/png"),
    ("p.png", encoded("JPEG"), "image/jpeg"),  # the type comes from the bytes, never from the name
    ("p.webp", encoded("GIF"), "image/gif"),
    ("p.preview.jpg", encoded("WEBP"), "image/webp"),
    ("p.preview.png", avif_header(), "image/avif"),
])
def test_pictures_are_served_with_the_sniffed_type_and_safe_headers(site: Site, name: str, data: bytes,
                                                                     kind: str) -> None:
    preview_of(site, "p", name).write_bytes(data)
    response = fetch(site, name)
    assert response.status_code == 200, response.text
    assert response.content == data
    assert response.headers["content-type"] == kind
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == CSP


def test_a_link_to_a_picture_inside_the_folder_is_served(site: Site) -> None:
    (site.root / "real.png").write_bytes(encoded("PNG"))
    os.symlink("real.png", preview_of(site, "l", "l.preview.png"))
    response = fetch(site, "l.preview.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"


def test_sniff_knows_each_format_and_nothing_else() -> None:
    assert [preview_serving.sniff(encoded(f)) for f in ("PNG", "JPEG", "GIF", "WEBP")] == \
        ["image/png", "image/jpeg", "image/gif", "image/webp"]
    assert preview_serving.sniff(avif_header()) == "image/avif"
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0" + b"mif1heic"
    for other in (SVG, HTML, heic, b"BM" + b"\0" * 40, b"%PDF-1.4", b"\0" * 64):
        assert preview_serving.sniff(other) is None, other[:12]
