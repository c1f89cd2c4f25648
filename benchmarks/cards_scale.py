"""The tab's cards document at scale: 50,000 embeddings in 5,000 folders on the standalone host.

    python benchmarks/cards_scale.py [--count 50000] [--folders 5000] [--folder DIR] [--browser]

Writes N small safetensors files (10 % SDXL, 5 % with a preview picture, 5 % with an ``x.json`` description) into
a temporary folder (or DIR, reused if it already holds them), starts the standalone host (``serve``, a subprocess)
and prints, over HTTP:
- page: ``GET /`` (the page with the first screen of cards inline): bytes and time;
- first screen: the inline cards document alone (bytes);
- ``/cards``: bytes (plain and gzip) and time, one request, then 4 in parallel (the slowest of the 4);
- whole list: the time to fetch every card the way the tab's script does (pages, when the host pages);
- with ``--browser``: in Chromium, navigation -> gradio's page up, -> first card, -> the whole list searchable.
Run it on main for the "before" numbers (the script only needs the ``serve`` command and ``/cards``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import json
import re
import struct
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "browser")]

from browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_host, stop_host  # noqa: E402
from tab import INIT_SCRIPT, MEASURE_FIRST  # noqa: E402

INLINE_DOC = re.compile(rb'<script type="application/json" class="sdemb-doc">(\{.*?)</script>', re.S)


def safetensors_bytes(tensors: dict[str, int], seed: int) -> bytes:
    """A valid safetensors file: float32 tensors of shape (1, width), written by hand (50,000 files in seconds)."""
    header, offset = {}, 0
    for name, width in tensors.items():
        header[name] = {"dtype": "F32", "shape": [1, width], "data_offsets": [offset, offset + 4 * width]}
        offset += 4 * width
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    values = struct.pack("<f", seed + 1.5) * (offset // 4)  # distinct vectors in every file (no "same vectors")
    return struct.pack("<Q", len(raw)) + raw + values


def write_library(folder: Path, count: int, folders: int) -> None:
    from PIL import Image

    marker = folder / f".written-{count}-{folders}"
    if marker.exists():
        return
    preview = folder / "_preview.png"
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 40), (200, 90, 160)).save(preview)
    picture = preview.read_bytes()
    preview.unlink()
    for i in range(count):
        f = i % folders
        sub = folder / f"pack-{f % 50:02d}" / f"set-{f // 50:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        name = f"emb-{i:05d}-{'neg' if i % 11 == 0 else 'style'}"
        tensors = {"clip_l": 768, "clip_g": 1280} if i % 10 == 0 else {"emb_params": 768}
        (sub / f"{name}.safetensors").write_bytes(safetensors_bytes(tensors, i))
        if i % 20 == 0:
            (sub / f"{name}.preview.png").write_bytes(picture)
        if i % 20 == 1:
            (sub / f"{name}.json").write_text(json.dumps({"description": f"a style for picture {i}", "notes": ""}))
    marker.write_text("")


def fetch(url: str, gzipped: bool = False) -> tuple[float, bytes, int]:
    """``(seconds, body, bytes on the wire)``."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gzipped else {})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        wire = response.read()
        encoded = response.headers.get("Content-Encoding") == "gzip"
    seconds = time.perf_counter() - started
    return seconds, gzip.decompress(wire) if encoded else wire, len(wire)


def whole_list(base: str) -> tuple[float, int]:
    """Every card, fetched as the script does: ``/cards``, then its further pages when it names them."""
    started = time.perf_counter()
    _, body, _ = fetch(base + "/cards", gzipped=True)
    doc = json.loads(body)
    count = len(doc["cards"])
    for page in range(1, doc.get("pages", 1)):
        _, body, _ = fetch(f"{base}/cards?page={page}&v={doc['version']}", gzipped=True)
        count += len(json.loads(body)["cards"])
    return time.perf_counter() - started, count


def inline_document(config: bytes) -> bytes:
    """The cards document the pane carries inline, from gradio's page config (the pane is an HTML value there)."""
    stack = [json.loads(config)]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and "sdemb-doc" in item:
            found = INLINE_DOC.search(item.encode())
            if found:
                return found.group(1)
    return b""


def measure_http(url: str) -> None:
    base = url + "sd-embeddings/v1"
    seconds, page, wire = fetch(url, gzipped=True)
    inline = inline_document(fetch(url + "config")[1])
    cards = len(json.loads(inline)["cards"]) if inline else 0
    print(f"page GET /: {seconds * 1000:.0f} ms, {len(page) / 1e3:.0f} KB ({wire / 1e3:.0f} KB on the wire); "
          f"first screen (inline document): {len(inline) / 1e3:.1f} KB, {cards} cards")
    for label in ("first", "again"):
        seconds, body, _ = fetch(base + "/cards")
        print(f"GET /cards ({label}): {seconds * 1000:.0f} ms, {len(body) / 1e6:.2f} MB")
    seconds, body, wire = fetch(base + "/cards", gzipped=True)
    print(f"GET /cards gzip: {seconds * 1000:.0f} ms, {wire / 1e6:.2f} MB on the wire")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        started = time.perf_counter()
        times = list(pool.map(lambda _: fetch(base + "/cards")[0], range(4)))
    print(f"GET /cards x4 in parallel: slowest {max(times) * 1000:.0f} ms, all done "
          f"{(time.perf_counter() - started) * 1000:.0f} ms")
    for label in ("first", "again"):
        seconds, count = whole_list(base)
        print(f"whole list ({label}; {count:,} cards, as the script fetches it): {seconds * 1000:.0f} ms")




def measure_browser(url: str, count: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.add_init_script(INIT_SCRIPT)
        page.goto(url)
        found = page.evaluate(MEASURE_FIRST)
        print(f"Chromium: navigation -> gradio page up (prompt box) {found['prompt']:.0f} ms; -> first card "
              f"{found['first']:.0f} ms; -> all {count:,} cards searchable {found['full']:.0f} ms")
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--folders", type=int, default=5_000)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--browser", action="store_true", help="also measure in Chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "embeddings"
        started = time.perf_counter()
        write_library(folder, args.count, args.folders)
        print(f"library: {args.count:,} files in {args.folders:,} folders ({time.perf_counter() - started:.1f} s "
              f"to write)")
        started = time.perf_counter()
        host = start_host(folder, Path(tmp) / "host.log")
        print(f"host up (scan included): {time.perf_counter() - started:.1f} s")
        try:
            measure_http(host.url)
            if args.browser:
                measure_browser(host.url, args.count)
        finally:
            stop_host(host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
