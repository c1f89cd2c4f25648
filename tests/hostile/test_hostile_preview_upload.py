"""Hostile uploads to ``POST /preview`` ("Replace preview"): only a re-encoded PNG beside a known entry is written.

Same site as ``test_hostile_http.py`` (secrets beside the embeddings folder, a preview that links out); the tree
is compared byte for byte after every request.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from factories import vectors, write_a1111_pt
from payloads import png, png_declaring
from PIL import Image
from test_hostile_http import P, Site

from sd_embeddings.tab import preview_upload


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def picture(size: tuple[int, int] = (32, 24), fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 40, 40)).save(out, format=fmt)
    return out.getvalue()


def upload(site: Site, card: str, data: object, kind: str = "image/png"):
    return site.post(f"{P}/preview", params={"id": card}, content=data, headers={"content-type": kind})


def test_a_picture_becomes_a_fresh_png_beside_the_entry(site: Site) -> None:
    sent = picture() + b"TRAILING-SECRET<script>"
    response = upload(site, site.card_id("good.pt"), sent, "image/jpeg")
    assert response.status_code == 200, response.text
    assert site.changed() == {"embeddings/good.preview.png"}
    written = (site.root / "good.preview.png").read_bytes()
    assert written.startswith(b"\x89PNG") and b"TRAILING-SECRET" not in written
    with Image.open(io.BytesIO(written)) as image:
        assert image.format == "PNG" and image.size == (32, 24)
    body = response.json()
    assert body["preview"] == "good.preview.png" and body["shadowed_by"] == ""
    assert "path=good.preview.png" in body["card"]["preview"]
    assert not [p for p in site.root.iterdir() if p.name.endswith(".tmp")]


def test_a_new_preview_is_picked_up_by_the_rescan(site: Site) -> None:
    response = upload(site, site.card_id("deep.safetensors"), picture(fmt="PNG"))
    assert response.status_code == 200
    # sub/deep.png (a plain picture) takes precedence over the new sub/deep.preview.png: the answer says so
    assert response.json()["shadowed_by"] == "deep.png"
    write_a1111_pt(site.root / "sub" / "bare.pt", vectors(1, seed=9))
    site.library.refresh()
    response = upload(site, site.card_id("bare.pt"), picture(fmt="WEBP"), "image/webp")
    assert response.status_code == 200 and "path=sub%2Fbare.preview.png" in response.json()["card"]["preview"]


@pytest.mark.parametrize("data", [
    b"", b"not a picture", b"<html><script>alert(1)</script></html>", b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
    png()[:40], b"%PDF-1.4\n", b"GIF89a", picture()[:100],
])
def test_non_pictures_are_refused(site: Site, data: bytes) -> None:
    response = upload(site, site.card_id("good.pt"), data)
    assert response.status_code == 400, (data[:20], response.status_code)
    assert site.changed() == set()


@pytest.mark.parametrize("kind", ["text/plain", "application/json", "multipart/form-data", "", "text/html",
                                  "image/", "application/x-www-form-urlencoded"])
def test_only_image_content_types_are_accepted(site: Site, kind: str) -> None:
    response = upload(site, site.card_id("good.pt"), picture(), kind)
    assert response.status_code == 403 and "Content-Type" in response.json()["detail"]
    assert site.changed() == set()


def test_decompression_bombs_and_oversized_bodies_are_refused(site: Site) -> None:
    card = site.card_id("good.pt")
    for width, height in ((100_000, 100_000), (20_000, 20_000), (60_000, 1_000)):
        response = upload(site, card, png_declaring(width, height))
        assert response.status_code == 400 and "too large" in response.text, (width, height)
    big = b"\x89PNG" + b"\0" * (preview_upload.MAX_BYTES + 1)
    assert upload(site, card, big).status_code == 413
    lying = site.post(f"{P}/preview", params={"id": card}, content=big,
                      headers={"content-type": "image/png", "content-length": "100"})
    assert lying.status_code in (400, 413)

    def pieces():
        for _ in range(preview_upload.MAX_BYTES // 65536 + 2):
            yield b"\0" * 65536

    assert site.post(f"{P}/preview", params={"id": card}, content=pieces(),
                     headers={"content-type": "image/png"}).status_code == 413
    assert site.changed() == set()


def test_large_pictures_are_scaled_down(site: Site) -> None:
    response = upload(site, site.card_id("good.pt"), picture((5000, 200), "PNG"))
    assert response.status_code == 200
    with Image.open(site.root / "good.preview.png") as image:
        assert max(image.size) == preview_upload.MAX_SIDE


@pytest.mark.parametrize("card_id", [
    "0/../outside.pt", "0/../../etc/passwd", "1/good.pt", "0/missing.pt", "0/good.json", "0/good.preview.png",
    "0//good.pt", "0/./good.pt", "0/sub/../good.pt", "0\\good.pt", "0/%2e%2e/outside.pt", "good.pt", "",
    "0/good.pt\0", "/etc/passwd",
])
def test_unknown_or_tricked_ids_are_refused(site: Site, card_id: str) -> None:
    assert upload(site, card_id, picture()).status_code == 404, card_id
    assert site.changed() == set()


def test_a_preview_that_links_out_is_replaced_never_written_through(site: Site) -> None:
    secret = site.secret_png.read_bytes()
    response = upload(site, site.card_id("linked.pt"), picture())
    assert response.status_code == 200
    assert site.secret_png.read_bytes() == secret
    assert not (site.root / "linked.preview.png").is_symlink()


def test_an_entry_in_a_folder_that_links_out_gets_no_preview(site: Site, tmp_path: Path) -> None:
    """The folder was inside when scanned, then swapped for a link out: the write is refused on the real path."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_a1111_pt(elsewhere / "far.pt", vectors(1, seed=5))
    write_a1111_pt(site.root / "linkdir" / "far.pt", vectors(1, seed=5))
    site.library.refresh()
    card = site.card_id("far.pt")
    shutil.rmtree(site.root / "linkdir")
    os.symlink(elsewhere, site.root / "linkdir")
    site.before = site.snapshot()
    response = upload(site, card, picture())
    assert response.status_code == 400
    assert not (elsewhere / "far.preview.png").exists()
    assert site.changed() == set()


def test_a_directory_in_the_way_is_refused(site: Site) -> None:
    (site.root / "good.preview.png").unlink()
    (site.root / "good.preview.png").mkdir()
    site.library.refresh()
    site.before = site.snapshot()
    assert upload(site, site.card_id("good.pt"), picture()).status_code == 400
    assert (site.root / "good.preview.png").is_dir()


def test_one_upload_at_a_time_another_is_told_to_retry(site: Site) -> None:
    card = site.card_id("good.pt")
    with preview_upload.upload_slot():  # an upload being decoded
        busy = upload(site, card, picture(), "image/jpeg")
        assert busy.status_code == 429 and "another preview upload" in busy.json()["detail"]
        assert site.changed() == set()
    assert upload(site, card, picture(), "image/jpeg").status_code == 200


def solid_png(width: int, height: int) -> bytes:
    """A valid, one-colour RGB PNG of any size, made row by row (a few hundred KB even at 7000x7000)."""
    packer = zlib.compressobj(9)
    row = b"\0" + b"\x80" * (width * 3)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


PEAK_CHILD = """
import json, resource, sys
sys.path[:0] = sys.argv[1].split(":")
from test_hostile_http import Site
from pathlib import Path

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

site = Site(Path(sys.argv[2]))
card = site.card_id("good.pt")
post = lambda data: site.post("/sd-embeddings/v1/preview", params={"id": card}, content=data,
                              headers={"content-type": "image/png"}).status_code
pictures = {name: Path(sys.argv[2], name).read_bytes() for name in ("small.png", "cap.png", "huge.png")}
assert post(pictures["small.png"]) == 200  # warm up: imports, first decode
base_peak, base_rss = peak_mb(), rss_mb()
result = {"cap": [post(pictures["cap.png"]) for _ in range(3)], "huge": post(pictures["huge.png"])}
result.update(peak_rise=peak_mb() - base_peak, held=rss_mb() - base_rss)
print(json.dumps(result))
"""


def test_uploads_raise_peak_memory_by_less_than_200_mb(tmp_path: Path) -> None:
    """Peak RSS of a fresh process around three uploads at the pixel cap and one 7000x7000 upload (a count of
    bytes, measured in a child so this process's history does not hide it)."""
    side = int(preview_upload.MAX_PIXELS ** 0.5)
    for name, size in (("small.png", 64), ("cap.png", side), ("huge.png", 7000)):
        (tmp_path / name).write_bytes(solid_png(size, size))
    paths = ":".join(str(Path(__file__).parent.parent / part) for part in ("hostile", ""))
    run = subprocess.run([sys.executable, "-c", PEAK_CHILD, paths, str(tmp_path)], capture_output=True, text=True,
                         cwd=Path(__file__).parent.parent.parent)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["cap"] == [200, 200, 200] and result["huge"] == 400
    assert result["peak_rise"] < 200, result
    assert result["held"] < 100, result  # what a request decoded is given back
