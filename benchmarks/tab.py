"""Textual Inversion tab speed in Chromium with N embeddings (default 10,000): first card, search, click.

    .venv/bin/python benchmarks/tab.py [--count 10000] [--folder DIR]

Writes N small SD1 safetensors files (10 % SDXL, 5 % with a preview, nested in sub-folders) into a temporary
folder (or DIR, reused if it already holds them), starts the standalone host, and measures in the page:
- first card: navigation start -> first card in the DOM (drawn from the inline first page), and -> the full
  list held by the script (all N cards searchable);
- search: one keystroke in the search box -> cards re-rendered and painted (median and worst of 20 queries);
- click: click on a card -> keyword in the prompt box and painted (median and worst of 20 clicks).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "browser")]

from browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_host, stop_host  # noqa: E402


def write_library(folder: Path, count: int) -> None:
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    if len(list(folder.rglob("*.safetensors"))) >= count:
        return
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(1, 768, generator=gen)
    xl = {"clip_l": torch.randn(1, 768, generator=gen), "clip_g": torch.randn(1, 1280, generator=gen)}
    for i in range(count):
        sub = folder / f"pack-{i % 40:02d}" / f"set-{i % 7}"
        sub.mkdir(parents=True, exist_ok=True)
        name = f"emb-{i:05d}-{'neg' if i % 11 == 0 else 'style'}"
        tensors = xl if i % 10 == 0 else {"emb_params": base + i}
        save_file(tensors, str(sub / f"{name}.safetensors"))
        if i % 20 == 0:
            Image.new("RGB", (32, 40), (i % 255, 90, 160)).save(sub / f"{name}.preview.png")


# Page-timing probes, shared with cards_scale.py. Attributes are observed too: the last page of cards can land
# without adding a child.
MEASURE_FIRST = """() => new Promise(done => {
  const wait = () => window.__fullList ? done({prompt: window.__prompt, first: window.__firstCard,
    full: window.__fullList}) : setTimeout(wait, 10);
  wait();
})"""

INIT_SCRIPT = """
new MutationObserver((_, obs) => {
  if (!window.__prompt && document.querySelector('#txt2img_prompt textarea')) window.__prompt = performance.now();
  if (!window.__firstCard && document.querySelector('.sdemb-card')) window.__firstCard = performance.now();
  const p = document.querySelector('.sdemb-pane');
  const s = p && window.sdEmbeddings && window.sdEmbeddings.states.get(p);
  if (s && s.doc && !s.partial && !window.__fullList) { window.__fullList = performance.now(); obs.disconnect(); }
}).observe(document, {childList: true, subtree: true, attributes: true});
"""

TIME_SEARCH = """(q) => new Promise(done => {
  const box = document.querySelector('#txt2img_textual_inversion_extra_search');
  const t0 = performance.now();
  box.value = q;
  box.dispatchEvent(new Event('input', {bubbles: true}));
  requestAnimationFrame(() => setTimeout(() => done([performance.now() - t0,
    document.querySelectorAll('#txt2img_textual_inversion_cards .card').length]), 0));
})"""

TIME_CLICK = """(i) => new Promise(done => {
  const cards = document.querySelectorAll('#txt2img_textual_inversion_cards .card');
  const card = cards[i % cards.length];
  const t0 = performance.now();
  card.click();
  requestAnimationFrame(() => setTimeout(() => done(performance.now() - t0), 0));
})"""


def fetch_time(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        size = len(response.read())
    return time.perf_counter() - started, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "embeddings"
        started = time.perf_counter()
        write_library(folder, args.count)
        print(f"library: {args.count:,} files in {folder} ({time.perf_counter() - started:.1f} s to write)")
        started = time.perf_counter()
        host = start_host(folder, Path(tmp) / "host.log")
        print(f"host up (scan included): {time.perf_counter() - started:.1f} s")
        try:
            seconds, size = fetch_time(host.url + "sd-embeddings/v1/cards")
            print(f"GET /cards: {seconds * 1000:.0f} ms, {size / 1e6:.2f} MB")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.add_init_script(INIT_SCRIPT)
                page.goto(host.url)
                first = page.evaluate(MEASURE_FIRST)
                print(f"page load -> gradio page up (prompt box in the DOM): {first['prompt']:.0f} ms")
                print(f"page load -> first card: {first['first']:.0f} ms; -> all {args.count:,} cards searchable: "
                      f"{first['full']:.0f} ms")
                queries = ["e", "em", "emb", "emb-0", "emb-01", "neg", "style", "pack-03", "set-5", "xyz", ""] * 2
                searches = [page.evaluate(TIME_SEARCH, q) for q in queries[:20]]
                times = [ms for ms, _ in searches]
                print(f"search keystroke -> painted: median {statistics.median(times):.1f} ms, "
                      f"worst {max(times):.1f} ms (cards in DOM after last: {searches[-1][1]})")
                clicks = [page.evaluate(TIME_CLICK, i) for i in range(20)]
                print(f"card click -> prompt updated and painted: median {statistics.median(clicks):.1f} ms, "
                      f"worst {max(clicks):.1f} ms")
                dom = page.evaluate("document.getElementsByTagName('*').length")
                print(f"page elements: {dom:,}")
                browser.close()
        finally:
            stop_host(host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
