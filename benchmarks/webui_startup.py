"""The WebUI with this extension disabled (stock) and enabled, on the same generated library, alternating runs.

    WEBUI_DIR=/path/to/stable-diffusion-webui python benchmarks/webui_startup.py --n 10000 --runs 2
    (--modes extension --no-rss: the extension's rows only, without the RSS runs; --runs 0: only the RSS row)

Opt-in: needs a WebUI checkout (and its venv, ``WEBUI_PYTHON`` or ``$WEBUI_DIR/venv/bin/python``). The repository is
linked into ``extensions/sd-embeddings`` for the run (and unlinked after); "stock" runs set
``disabled_extensions: ["sd-embeddings"]`` in a fresh settings file, as the Extensions tab does. Each run gets a
fresh settings file and ``--embeddings-dir``; the library is generated once (benchmarks/scan.py's mix: 50 % A1111
.pt, 35 % .safetensors, 15 % SDXL, 5 % with previews) plus an empty folder for the RSS runs.

Per run it records, from the WebUI's own console lines and from the outside:
  startup      the WebUI's "Startup time" line (and its largest parts)
  ti load      "load textual inversion embeddings" inside the "Model loaded in" line (0 when under the timer's cut)
  api first    how long GET /sdapi/v1/embeddings takes when first asked right after the "Startup time" line (asking
               earlier races the WebUI adding its middleware, which makes it exit), and whether SDXL files were
               already listed as skipped then
  api size     bytes of that listing once the model has loaded
  refresh      POST /sdapi/v1/refresh-embeddings with nothing changed (best of 3), and after one file was added
  cards        GET /sd-embeddings/v1/cards and its further pages (the tab's whole list; the extension only): the
               bulk of a browser Refresh, whose rescan is the refresh row; first (the build) and again (kept)
  generation   a 64x64, 1-step txt2img with nothing changed, and the next one after a .pt is dropped in a sub-folder
               (``--pairs`` pairs; the row is the median difference within a pair)
  rss          in one process per mode: the WebUI starts on an empty folder and makes the requests of ``exercise``;
               the library's folders are moved in, it refreshes, lists (the extension: hashes every file) and makes
               the same requests again; the RSS held is the difference of the two settled samples (sampled every
               second until the last 5 lie within 2 MiB, their median; at most 3 minutes), each taken again after
               glibc's malloc_trim is called in the WebUI through gdb (when installed): the WebUI's own freed heap
               (model load, generations) stays resident until a trim, and the extension trims after bulk jobs
The library's paths are new for each invocation, so with --runs 2 the first run of each mode is cold (no cache
knows these files) and the second warm. It prints the issue's table: stock, extension, goal, met. Nothing here is
asserted: it is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from webui_process import WebUI, request, settled_rss, trim_heap  # noqa: E402

TXT2IMG = {"prompt": "a cat", "negative_prompt": "emb3", "steps": 1, "width": 64, "height": 64, "seed": 1}


@dataclass
class Run:
    mode: str
    startup: float = 0.0
    startup_parts: dict[str, float] = field(default_factory=dict)
    ti_load: float = 0.0
    api_first_after: float = 0.0
    api_first_call: float = 0.0
    api_first_skipped_xl: bool = False
    api_first_xl_loaded: bool = False
    api_first_partial: bool = False
    cards: float = 0.0
    cards_again: float = 0.0
    api_size: int = 0
    refresh_same: float = 0.0
    refresh_one_new: float = 0.0
    generation_same: float = 0.0
    generation_after_drop: float = 0.0
    rss_mib: float = 0.0


def whole_list(url: str) -> float:
    """Seconds to fetch every page of the tab's cards list, as its script does."""
    payload, seconds = request(url)
    head = json.loads(payload)
    for page in range(1, head.get("pages", 1)):
        seconds += request(f"{url}?page={page}&build={head['build']}")[1]
    return seconds


def timer_parts(line: str) -> dict[str, float]:
    """``"Startup time: 16.1s (import torch: 3.2s, ...)."`` -> ``{"total": 16.1, "import torch": 3.2, ...}``."""
    head, _, inner = line.partition("(")
    total = re.search(r"([\d.]+)s", head)
    parts = {name.strip(): float(value) for name, value in re.findall(r"([^(,]+?):\s*([\d.]+)s", inner)}
    return {"total": float(total.group(1)) if total else 0.0, **parts}


def generation_pairs(url: str, library: Path, pairs: int) -> tuple[float, float]:
    """``pairs`` times: a generation with nothing changed, then one right after a ``.pt`` is dropped in a
    sub-folder. Returns the median of the first and that median plus the median of the pairs' differences (each
    drop compared with the generation just before it: on a shared machine the load moves between pairs). The
    dropped files stay until the end, so each pair's first generation follows one that already took the last drop."""
    same, extra, dropped = [], [], []
    for _ in range(pairs):
        before = request(url + "/sdapi/v1/txt2img", TXT2IMG)[1]
        dropped.append(library / "group3" / "sub2" / f"dropped{time.time_ns()}.pt")
        shutil.copy(next(library.rglob("emb0.pt")), dropped[-1])
        same.append(before)
        extra.append(request(url + "/sdapi/v1/txt2img", TXT2IMG)[1] - before)
    for path in dropped:
        path.unlink()
    print(f"  generation pairs: nothing changed {[round(x, 2) for x in same]}, after a drop minus before "
          f"{[round(x, 2) for x in extra]}", flush=True)
    return statistics.median(same), statistics.median(same) + statistics.median(extra)


def measure(root: Path, library: Path, mode: str, work: Path, port: int, pairs: int = 3) -> Run:
    run = Run(mode)
    with WebUI(root, port, library, mode, work) as webui:
        parts = timer_parts(webui.wait_for("Startup time:"))
        run.startup, run.startup_parts = parts.pop("total"), parts
        run.api_first_after, run.api_first_call = webui.first_api_answer()
        first = json.loads(request(webui.url + "/sdapi/v1/embeddings")[0])
        run.api_first_skipped_xl = any(name.startswith("xl") for name in first.get("skipped", {}))
        run.api_first_xl_loaded = any(name.startswith("xl") for name in first.get("loaded", {}))
        run.api_first_partial = bool(first.get("scanning"))  # the first scan still under way: what it has read
        run.ti_load = timer_parts(webui.wait_for("Model loaded in")).get("load textual inversion embeddings", 0.0)
        payload, _ = request(webui.url + "/sdapi/v1/embeddings")
        run.api_size = len(payload)
        run.refresh_same = min(request(webui.url + "/sdapi/v1/refresh-embeddings", {})[1] for _ in range(3))
        if mode == "extension":
            run.cards = whole_list(webui.url + "/sd-embeddings/v1/cards")  # built for this library state
            run.cards_again = min(whole_list(webui.url + "/sd-embeddings/v1/cards") for _ in range(2))
        request(webui.url + "/sdapi/v1/txt2img", TXT2IMG)  # warm-up: the first generation builds caches
        run.generation_same, run.generation_after_drop = generation_pairs(webui.url, library, pairs)
        run.refresh_one_new = request(webui.url + "/sdapi/v1/refresh-embeddings", {})[1]
        run.rss_mib = settled_rss(webui.process.pid)
    return run


def exercise(webui: WebUI, drops: Path, source: Path, run: Run) -> None:
    """The requests after the listing, the same for a library and its empty-folder baseline (a generation's
    buffers stay resident: without them in the baseline, "held for the library" counted about 90 MiB of the
    WebUI's own): refreshes, the tab's cards, two generations, a copy of ``source`` dropped into the folder ``drops``,
    a third generation, a refresh."""
    run.refresh_same = min(request(webui.url + "/sdapi/v1/refresh-embeddings", {})[1] for _ in range(3))
    if webui.mode == "extension":
        run.cards = min(whole_list(webui.url + "/sd-embeddings/v1/cards") for _ in range(2))
    request(webui.url + "/sdapi/v1/txt2img", TXT2IMG)  # warm-up: the first generation builds caches
    run.generation_same = request(webui.url + "/sdapi/v1/txt2img", TXT2IMG)[1]
    dropped = drops / f"dropped{time.time_ns()}.pt"
    dropped.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, dropped)
    run.generation_after_drop = request(webui.url + "/sdapi/v1/txt2img", TXT2IMG)[1]
    dropped.unlink()
    run.refresh_one_new = request(webui.url + "/sdapi/v1/refresh-embeddings", {})[1]


def held_in_process(root: Path, library: Path, folder: Path, mode: str, work: Path,
                    port: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(before, after)``, each ``settled_samples``: one WebUI process started on the empty ``folder`` after the
    requests of ``exercise``, then again after the library's folders were moved into ``folder`` (and back after),
    the WebUI refreshed, listed them, (the extension) hashed them, and made the same requests. Two processes of one
    WebUI differ by tens to hundreds of MiB on their own (model pages, allocator state): a difference of two
    processes (the library's run minus an empty-folder run) measured that noise, not the library."""
    with WebUI(root, port, folder, mode, work) as webui:
        webui.wait_for("Model loaded in")
        webui.wait_for("Startup time:")
        drops, source = folder / "drops", work / "drop-source.pt"  # outside the library, which moves
        shutil.copy(next(library.rglob("emb0.pt")), source)
        for _ in range(2):
            request(webui.url + "/sdapi/v1/embeddings")
        exercise(webui, drops, source, Run(mode))
        before = settled_samples(webui)
        moved = sorted(library.iterdir())
        for child in moved:
            child.rename(folder / child.name)
        try:
            request(webui.url + "/sdapi/v1/refresh-embeddings", {})
            for _ in range(2):
                request(webui.url + "/sdapi/v1/embeddings")
            if mode == "extension":
                wait_hashed(webui)
            exercise(webui, drops, source, Run(mode))
            after = settled_samples(webui)
        finally:
            for child in moved:
                (folder / child.name).rename(child)
    return before, after


def settled_samples(webui: WebUI) -> tuple[float, float]:
    """``(settled RSS, settled RSS after trimming the C heap)``; the second is NaN without gdb."""
    plain = settled_rss(webui.process.pid)
    return plain, settled_rss(webui.process.pid) if trim_heap(webui.process.pid) else float("nan")


def wait_hashed(webui: WebUI, limit: float = 900) -> None:
    """Until the extension's background pass has hashed every file (its own listing shows every hash)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        rows = json.loads(request(webui.url + "/sd-embeddings/v1/embeddings")[0])["embeddings"]
        if rows and all(row["hash"] for row in rows if row["status"] in ("loaded", "incompatible")):
            return
        time.sleep(3)


NUMBERS = [name for name, kind in Run.__annotations__.items() if kind in ("float", "int")]


def report(runs: list[Run], held: dict[str, float]) -> None:
    """The issue's table: each row measured for stock and the extension, with the goal and whether it is met."""
    def run(mode: str, index: int) -> Run:
        found = [r for r in runs if r.mode == mode]
        return found[min(index, len(found) - 1)] if found else Run(mode, **{name: float("nan") for name in NUMBERS})

    stock, ext = (run("stock", 0), run("stock", 1)), (run("extension", 0), run("extension", 1))
    rows = [
        ("Startup time, cold (s)", stock[0].startup, ext[0].startup, stock[0].startup + 1),
        ("Startup time, warm (s)", stock[1].startup, ext[1].startup, stock[1].startup + 1),
        ("TI load inside Model loaded, cold (s)", stock[0].ti_load, ext[0].ti_load, 1.0),
        ("TI load inside Model loaded, warm (s)", stock[1].ti_load, ext[1].ti_load, 0.3),
        ("first GET embeddings after start (s)", stock[0].api_first_call, ext[0].api_first_call, 0.5),
        ("refresh-embeddings, nothing changed (s)", stock[1].refresh_same, ext[1].refresh_same, 0.1),
        ("refresh-embeddings, one file changed (s)", stock[1].refresh_one_new, ext[1].refresh_one_new, 0.2),
        ("generation after a .pt drop minus nothing changed (s)",
         stock[1].generation_after_drop - stock[1].generation_same,
         ext[1].generation_after_drop - ext[1].generation_same, 0.1),
        ("RSS held for the library (MiB)", held["stock"], held["extension"], 40.0),
        ("GET embeddings size (MB)", stock[1].api_size / 1e6, ext[1].api_size / 1e6, 1.5),
        ("tab document GET /sd-embeddings/v1/cards, first (s)", float("nan"), ext[1].cards, 0.3),
        ("tab document GET /sd-embeddings/v1/cards, again (s)", float("nan"), ext[1].cards_again, 0.3),
    ]
    print(f"{'measure (' + str(len(runs)) + ' runs)':56} {'stock':>9} {'extension':>10} {'goal':>8}  met")
    for label, stock_value, ext_value, goal in rows:
        met = "yes" if ext_value <= goal else "NO"
        print(f"{label:56} {stock_value:9.2f} {ext_value:10.2f} {goal:8.2f}  {met}")
    for mode, one in (("stock", stock[0]), ("extension", ext[0])):
        print(f"{mode} listing right after start: SDXL among skipped {one.api_first_skipped_xl}, among loaded "
              f"{one.api_first_xl_loaded}, partial (scanning) {one.api_first_partial}")
    for mode, pair in (("stock", stock), ("extension", ext)):
        for label, one in zip(("cold", "warm"), pair):
            top = sorted(one.startup_parts.items(), key=lambda item: -item[1])[:6]
            print(f"{mode} {label} startup parts: " + ", ".join(f"{k} {v:.1f}s" for k, v in top))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="embeddings to generate (default 10,000)")
    parser.add_argument("--runs", type=int, default=2, help="alternating runs per mode (default 2)")
    parser.add_argument("--port", type=int, default=7871)
    parser.add_argument("--modes", default="stock,extension",
                        help="which modes to run, comma-separated (default both; a missing one reports nan)")
    parser.add_argument("--pairs", type=int, default=3,
                        help="generation pairs (nothing changed, then after a drop) per run (default 3)")
    parser.add_argument("--no-rss", action="store_true", help="skip the runs the RSS row needs (one per mode)")
    options = parser.parse_args()
    if not os.environ.get("WEBUI_DIR"):
        print("set WEBUI_DIR to a WebUI checkout (see the docstring)", file=sys.stderr)
        return 2
    from scan import generate  # torch: not needed to say what to set

    root = Path(os.environ["WEBUI_DIR"]).resolve()
    link = root / "extensions" / "sd-embeddings"
    made_link = not link.exists()
    if made_link:
        link.symlink_to(REPO, target_is_directory=True)
    try:
        with tempfile.TemporaryDirectory(prefix="webui-startup-") as tmp:
            work = Path(tmp)
            library, empty = work / "library", work / "empty"
            empty.mkdir()
            generate(library, options.n)
            print(f"generated {options.n} embeddings in {library}", flush=True)
            runs, modes = [], [mode for mode in ("stock", "extension") if mode in options.modes.split(",")]
            for index in range(options.runs):
                for mode in modes if index % 2 == 0 else modes[::-1]:
                    runs.append(measure(root, library, mode, work, options.port, options.pairs))
                    print(f"run {index + 1} {mode}: {runs[-1]}", flush=True)
            held = {"stock": float("nan"), "extension": float("nan")}
            for mode in [] if options.no_rss else modes:
                before, after = held_in_process(root, library, empty, mode, work, options.port)
                held[mode] = after[1] - before[1] if after[1] == after[1] else after[0] - before[0]
                print(f"{mode} RSS in one process (MiB), empty folder -> library: {before[0]:.0f} -> {after[0]:.0f} "
                      f"({after[0] - before[0]:+.1f}); with the C heap trimmed (gdb): {before[1]:.0f} -> "
                      f"{after[1]:.0f} ({after[1] - before[1]:+.1f})", flush=True)
            report(runs, held)
    finally:
        if made_link:
            link.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
