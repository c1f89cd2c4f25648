"""Scan speed against the WebUI 1.10 algorithm and a bare stat+read loop, on the same generated files.

    python benchmarks/scan.py              # N = 1,000 and 10,000
    python benchmarks/scan.py --n 2000     # one size

Generates N embeddings in nested folders (50 % A1111 .pt, 35 % emb_params .safetensors, 10 % SDXL, 5 % with a
preview picture), then times, best of --repeat runs:
  bare      os.walk + stat + read the first 4 KiB of each file (the floor)
  webui     what the WebUI 1.10 does at its first load, file by file: the safe-unpickler pre-check and a
            full torch.load of every .pt, load_file of every .safetensors, float32 conversion, and a sha256
            of every file stored in an SQLite cache (the WebUI uses diskcache: SQLite, WAL)
  webui_warm  the same reload with the hash cache filled (what Refresh and every reload cost)
  cold      our first scan (new Library, empty cache)
  restart   a new Library that finds the scan cache of an earlier run (a WebUI restart)
  warm      our rescan with nothing changed
  changed   our rescan after one file was rewritten
and prints ratios from the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import sqlite3
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sd_embeddings.library import Library  # noqa: E402
from sd_embeddings.library.hashing import HashCache  # noqa: E402


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


class _CheckUnpickler(pickle.Unpickler):
    """The WebUI's pre-check of every .pt: an allow-list unpickling pass before the real torch.load."""

    allowed = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
               ("torch._utils", "_rebuild_parameter"), ("torch", "FloatStorage"), ("torch", "HalfStorage"),
               ("torch", "LongStorage"), ("torch.nn.modules.container", "ParameterDict"), ("__builtin__", "set")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"global '{module}/{name}' is forbidden")
        return super().find_class(module, name)

    def persistent_load(self, saved_id):
        return torch.storage.TypedStorage(_internal=True)


def _webui_check(path: str) -> None:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            with archive.open(name) as handle:
                _CheckUnpickler(handle).load()
    else:
        with open(path, "rb") as handle:
            unpickler = _CheckUnpickler(handle)
            for _ in range(5):
                unpickler.load()


class HashStore:
    """The WebUI keeps sha256 values in diskcache (SQLite, WAL, one committed write per new hash)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=wal")
        self.db.execute("PRAGMA synchronous=1")
        self.db.execute("CREATE TABLE IF NOT EXISTS hashes (key TEXT PRIMARY KEY, mtime REAL, sha256 TEXT)")

    def sha256(self, path: str, title: str) -> str:
        mtime = os.path.getmtime(path)
        row = self.db.execute("SELECT mtime, sha256 FROM hashes WHERE key = ?", (title,)).fetchone()
        if row and row[0] >= mtime:
            return row[1]
        with open(path, "rb") as handle:
            value = hashlib.sha256(handle.read()).hexdigest()
        self.db.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?)", (title, mtime, value))
        return value


def webui_loop(root: Path, store: HashStore) -> int:
    """What the WebUI 1.10 does at every forced reload, file by file (see the module docstring)."""
    count = 0
    for folder, _, files in os.walk(root, followlinks=True):
        for name in files:
            path = os.path.join(folder, name)
            stem, ext = os.path.splitext(name)
            ext = ext.upper()
            if ext in (".PT", ".BIN"):
                _webui_check(path)
                data = torch.load(path, map_location="cpu", weights_only=False)
                tensors = list(data["string_to_param"].values())
            elif ext == ".SAFETENSORS":
                tensors = list(load_file(path, device="cpu").values())
            else:
                continue  # previews (*.preview.png) are skipped by the WebUI too
            _ = [t.detach().to(torch.float32) for t in tensors]
            store.sha256(path, "textual_inversion/" + stem)
            count += 1
    return count


def best_of(repeat: int, func, *args) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def cold_scan(root: Path, cache: Path | None = None) -> Library:
    """A new library (a new process, in effect): with ``cache``, a restart that finds its scan cache."""
    library = Library([root], hash_cache=HashCache(cache), background_hashing=False)
    library.refresh()
    return library


def run(count: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="scan-bench-") as tmp:
        root = Path(tmp)
        generate(root, count)
        bare_loop(root)  # warm the page cache for everybody
        results = {"bare": best_of(repeat, bare_loop, root)}
        cold_times = []
        for i in range(max(1, repeat // 2)):
            start = time.perf_counter()
            webui_loop(root, HashStore(Path(tmp) / f"cold-cache-{i}.sqlite"))
            cold_times.append(time.perf_counter() - start)
        results["webui"] = min(cold_times)
        warm_store = HashStore(Path(tmp) / "cold-cache-0.sqlite")
        results["webui_warm"] = best_of(max(1, repeat // 2), webui_loop, root, warm_store)
        results["cold"] = best_of(repeat, cold_scan, root)
        library = cold_scan(root, Path(tmp) / "scan-cache.json")
        library.hash_cache.save()
        results["restart"] = best_of(repeat, cold_scan, root, Path(tmp) / "scan-cache.json")
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
    for key in ("bare", "webui", "webui_warm", "cold", "restart", "warm", "changed"):
        print(f"  {key:10s} {r[key] * 1000:10.1f} ms   {r[key] / count * 1e6:8.1f} us/file")
    print(f"  cold scan vs webui first load:        {r['webui'] / r['cold']:7.1f}x faster   (target >= 20x)")
    print(f"  restart vs webui first load:          {r['webui'] / r['restart']:7.1f}x faster")
    print(f"  warm rescan vs webui reload (cached): {r['webui_warm'] / r['warm']:7.1f}x faster   (target >= 100x)")
    print(f"  one change vs webui reload (cached):  {r['webui_warm'] / r['changed']:7.1f}x faster")
    print(f"  cold scan vs bare stat+read loop:     {r['cold'] / r['bare']:7.2f}x slower   (target <= 2x)")


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
