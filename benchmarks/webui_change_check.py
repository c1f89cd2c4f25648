"""Cost of the per-generation "did anything change?" check of the WebUI adapter, with 10,000 files.

    .venv/bin/python benchmarks/webui_change_check.py [N_FILES] [N_FOLDERS]

Prints the median and p99 of: the inotify path (what runs by default on Linux), the per-folder stat fallback
(watch off, or no inotify), and one full per-file stat pass (the polling thread's work, off the generation path).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sd_embeddings.library import Library  # noqa: E402
from sd_embeddings.library.watcher import ChangeWatcher, any_file_changed  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    return statistics.median(samples) / 1e6, samples[int(len(samples) * 0.99) - 1] / 1e6


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    folders = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    with tempfile.TemporaryDirectory() as tmp:
        vec = torch.zeros(1, 768)
        for i in range(files):
            folder = Path(tmp, f"f{i % folders:03d}")
            folder.mkdir(exist_ok=True)
            save_file({"emb_params": vec}, str(folder / f"e{i}.safetensors"))
        library = Library([tmp], background_hashing=False)
        start = time.perf_counter()
        library.refresh()
        print(f"{len(library.entries)} files in {folders} folders, first scan {time.perf_counter() - start:.1f} s")
        watcher = ChangeWatcher()
        watcher.watch(library)
        time.sleep(0.5)
        watcher.consume()

        def inotify_check() -> bool:
            return watcher.consume() or (not watcher.complete and library.folders_changed())

        for label, fn, repeat in (("inotify (default)", inotify_check, 2000),
                                  ("per-folder stat (watch off)", library.folders_changed, 500),
                                  ("per-file stat pass (poll thread)", lambda: any_file_changed(library), 20)):
            median, p99 = timed(fn, repeat)
            print(f"{label:34s} median {median:8.3f} ms   p99 {p99:8.3f} ms   [{watcher.kind}]")
        watcher.stop()


if __name__ == "__main__":
    main()
