"""Scan speed against the WebUI 1.10 algorithm and a bare stat+read loop, on the same generated files.

    python benchmarks/scan.py              # N = 1,000 and 10,000
    python benchmarks/scan.py --n 2000     # one size

Generates N embeddings in nested folders (50 % A1111 .pt, 35 % emb_params .safetensors, 10 % SDXL, 5 % with a
preview picture), then times, best of --repeat runs:
  bare      os.walk + stat + read the first 4 KiB of each file (the floor)
  webui     what the WebUI 1.10 does at every forced reload: full torch.load / load_file of every file,
            float32 conversion, and a sha256 of every file
  cold      our first scan (new Library, empty hash cache)
  warm      our rescan with nothing changed
  changed   our rescan after one file was rewritten
and prints ratios from the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sd_embeddings.library import Library  # noqa: E402


def generate(root: Path, count: int) -> None:
    generator = torch.Generator().manual_seed(0)
    for i in range(count):
        folder = root / f"group{i % 20}" / f"sub{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        rows = 1 + i % 8
        kind = i % 20
        if kind < 10:
            path = folder / f"emb{i}.pt"
            torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": torch.randn(rows, 768,
                        generator=generator)}, "name": path.stem, "step": i}, path,
                       _use_new_zipfile_serialization=False)
        elif kind < 17:
            path = folder / f"emb{i}.safetensors"
            save_file({"emb_params": torch.randn(rows, 768, generator=generator)}, str(path))
        else:
            path = folder / f"xl{i}.safetensors"
            save_file({"clip_l": torch.randn(rows, 768, generator=generator),
                       "clip_g": torch.randn(rows, 1280, generator=generator)}, str(path))
        if i % 20 == 0:
            Image.new("RGB", (64, 64), (i % 255, 40, 90)).save(folder / f"{path.stem}.preview.png")


def bare_loop(root: Path) -> int:
    count = 0
    for folder, _, files in os.walk(root, followlinks=True):
        for name in files:
            path = os.path.join(folder, name)
            os.stat(path)
            with open(path, "rb") as handle:
                handle.read(4096)
            count += 1
    return count


def webui_loop(root: Path) -> int:
    """The WebUI 1.10 reload: load every tensor file completely, convert to float32, sha256 every file."""
    count = 0
    for folder, _, files in os.walk(root, followlinks=True):
        for name in files:
            path = os.path.join(folder, name)
            ext = os.path.splitext(name)[1].upper()
            if ext in (".PT", ".BIN"):
                data = torch.load(path, map_location="cpu", weights_only=True)
                tensors = list(data["string_to_param"].values())
            elif ext == ".SAFETENSORS":
                tensors = list(load_file(path, device="cpu").values())
            else:
                continue  # previews (*.preview.png) are skipped by the WebUI too
            _ = [t.detach().to(torch.float32) for t in tensors]
            with open(path, "rb") as handle:
                hashlib.sha256(handle.read()).hexdigest()
            count += 1
    return count


def best_of(repeat: int, func, *args) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def cold_scan(root: Path) -> Library:
    library = Library([root], background_hashing=False)
    library.refresh()
    return library


def run(count: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="scan-bench-") as tmp:
        root = Path(tmp)
        generate(root, count)
        bare_loop(root)  # warm the page cache for everybody
        results = {"bare": best_of(repeat, bare_loop, root), "webui": best_of(max(1, repeat // 2), webui_loop, root),
                   "cold": best_of(repeat, cold_scan, root)}
        library = cold_scan(root)
        results["warm"] = best_of(repeat, library.refresh)
        target = next(iter(library.usable()))

        def change_one() -> None:
            info = os.stat(target.path)
            os.utime(target.path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
            library.refresh()

        results["changed"] = best_of(repeat, change_one)
        results["entries"] = len(library.entries)
    return results


def report(count: int, r: dict[str, float]) -> None:
    print(f"\nN = {count:,} files ({int(r['entries']):,} entries)")
    for key in ("bare", "webui", "cold", "warm", "changed"):
        print(f"  {key:8s} {r[key] * 1000:10.1f} ms   {r[key] / count * 1e6:8.1f} us/file")
    print(f"  cold vs webui:    {r['webui'] / r['cold']:7.1f}x faster   (target >= 20x)")
    print(f"  warm vs webui:    {r['webui'] / r['warm']:7.1f}x faster   (target >= 100x)")
    print(f"  changed vs webui: {r['webui'] / r['changed']:7.1f}x faster")
    print(f"  cold vs bare:     {r['cold'] / r['bare']:7.2f}x slower   (target <= 2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="number of files (repeatable)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for count in args.n or [1000, 10000]:
        report(count, run(count, args.repeat))


if __name__ == "__main__":
    main()
