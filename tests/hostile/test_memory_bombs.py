"""Memory bombs: no single image raises the peak resident memory of a scan by more than ~200 MB.

Each case runs in a new Python process (forked from one that has imported the package: ``warm_python``): after a
warm-up scan of real image embeddings, the peak resident size is read before and after scanning and verifying a
folder holding only the bomb (``resource.getrusage``, and on Linux the high-water mark reset to the current size
first, so an earlier peak, this process's or the one it was forked from, cannot hide this one).
Peak RSS is a count of bytes, not a time: it does not depend on the machine's load.
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from pathlib import Path

import pytest
import warm_python
from factories import vectors, write_image
from payloads import png_chunk
from PIL import Image
from test_hostile_files import pixel_png

ROOT = Path(__file__).resolve().parents[2]
LIMIT_MIB = 200
MEASURE = """
import gc, json, resource, sys
from sd_embeddings.library import Library

def scan(folder):
    library = Library([folder], background_hashing=False)
    library.refresh()
    for entry in library.entries:
        library.verify(entry)
    return {e.filename: [e.status.value, e.reason] for e in library.entries}

def status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

scan(sys.argv[1])  # warm-up: imports, plugins and caches a real image embedding needs
gc.collect()
try:  # Linux: reset the high-water mark to the current size, so an earlier peak cannot hide this one
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    rss_before = status_kib("VmRSS")
except OSError:
    rss_before = None
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
found = scan(sys.argv[2])
growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
if rss_before is not None:
    growth = max(growth, status_kib("VmHWM") - rss_before)
print(json.dumps({"growth_mib": growth / 1024, "entries": found}))
"""


def json_bomb(megabytes: int) -> bytes:
    """An embedding-shaped JSON document of about ``megabytes`` MB: one long row of zeros."""
    row = b"0.0, " * (megabytes * 2**20 // 5)
    return b'{"string_to_param": {"*": {"TORCHTENSOR": [[' + row + b'0.0]]}}}'


def measure(tmp_path: Path, name: str, raw: bytes) -> dict:
    warm, bomb = tmp_path / "warm", tmp_path / "bomb"
    write_image(warm / "card.png", vectors(2), "card", carrier="pixels")
    write_image(warm / "text.png", vectors(2), "text")
    bomb.mkdir()
    (bomb / name).write_bytes(raw)
    result = warm_python.run(MEASURE, [str(warm), str(bomb)], cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(name, f"{len(raw) / 1024:.0f} KB file, peak RSS +{report['growth_mib']:.0f} MiB", report["entries"])
    return report


def test_small_png_whose_pixels_inflate_to_60_mb_of_json(tmp_path: Path) -> None:
    raw = pixel_png(zlib.compress(json_bomb(60), 9), height=64)
    assert len(raw) < 200 * 1024
    report = measure(tmp_path, "inflate.png", raw)
    assert report["growth_mib"] < LIMIT_MIB
    status, reason = report["entries"]["inflate.png"]
    assert status == "corrupt" and "expands beyond" in reason


def test_large_plain_png(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (6250, 6250), (30, 60, 90)).save(out, format="PNG")
    report = measure(tmp_path, "photo.png", out.getvalue())
    assert report["growth_mib"] < LIMIT_MIB
    status, reason = report["entries"]["photo.png"]
    assert status == "not-an-embedding" and "6250x6250" in reason


@pytest.mark.parametrize("kind", ["tEXt", "zTXt", "iTXt"])
def test_text_chunks_are_capped_before_they_are_inflated_or_parsed(tmp_path: Path, kind: str) -> None:
    """A text chunk whose payload is (or inflates to) far more than an embedding: refused without parsing it.
    zTXt/iTXt hold 40 MB of base64 compressed into about 40 KB."""
    text = base64.b64encode(json_bomb(30))
    key = b"sd-ti-embedding\x00"
    payload = {"tEXt": key + text, "zTXt": key + b"\x00" + zlib.compress(text, 9),
               "iTXt": key + b"\x01\x00\x00\x00" + zlib.compress(text, 9)}[kind]
    out = io.BytesIO()
    Image.new("RGB", (32, 32)).save(out, format="PNG")
    plain = out.getvalue()
    raw = plain[:33] + png_chunk(kind.encode(), payload) + plain[33:]
    report = measure(tmp_path, "chunk.png", raw)
    assert report["growth_mib"] < LIMIT_MIB
    status, reason = report["entries"]["chunk.png"]
    assert status == "corrupt" and ("refused" in reason), reason


def test_json_made_of_empty_lists_is_refused_by_count(tmp_path: Path) -> None:
    """``[],`` costs 3 bytes of JSON and a 64-byte list: the container count refuses it before parsing."""
    document = b'{"string_to_param": {"*": {"TORCHTENSOR": [' + b"[]," * (5 * 2**20) + b"[]]}}}"
    report = measure(tmp_path, "lists.png", pixel_png(zlib.compress(document, 9), height=64))
    assert report["growth_mib"] < LIMIT_MIB
    status, reason = report["entries"]["lists.png"]
    assert status == "corrupt" and "more than an embedding" in reason and "refused" in reason


def test_millions_of_empty_chunks(tmp_path: Path) -> None:
    """5 million empty ancillary chunks (60 MB): the chunk walk keeps only what it needs and stops at a count."""
    out = io.BytesIO()
    Image.new("RGB", (32, 32)).save(out, format="PNG")
    plain = out.getvalue()
    empty = png_chunk(b"abCd", b"")
    report = measure(tmp_path, "chunks.png", plain[:33] + empty * 5_000_000 + plain[33:])
    assert report["growth_mib"] - 60 < LIMIT_MIB  # the file itself is read whole (60 MB)
    status, reason = report["entries"]["chunks.png"]
    assert status == "corrupt" and "PNG chunks" in reason
