"""The scan cache's write and read at N entries (default 10,000), the goal being <= 50 ms to write.

    python benchmarks/scan_cache.py [--n 10000]

Records are what a scan of benchmarks/scan.py's library stores (an A1111 .pt: one part, header fields, a sha256),
under paths 40-60 characters long. Prints wall and CPU time (a loaded machine stretches wall time, not CPU time)
of ``HashCache.save`` (encode + atomic write with fsync) and of loading it again, and the file size.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sd_embeddings.library.hashing import HashCache  # noqa: E402


def fill(cache: HashCache, count: int) -> None:
    for i in range(count):
        path = f"/home/user/stable-diffusion-webui/embeddings/group{i % 20}/sub{i % 7}/emb{i}.pt"
        stamp = (30_000 + i, 1_700_000_000_000_000_000 + i, 1_700_000_000_000_000_000 + i, 1_000_000 + i)
        cache.put(path, stamp, hashlib.sha256(path.encode()).hexdigest())
        cache.put_scan(path, stamp, {"status": "loaded", "reason": "", "keyword": f"emb{i}", "verified": True,
                                     "parts": {"string_to_param.*": [1 + i % 8, 768]}, "layout": "string_to_param",
                                     "name": f"emb{i}", "step": i, "sd_checkpoint": None, "sd_checkpoint_name": None})


def timed(action) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = HashCache(Path(tmp) / "hashes.json")
        fill(cache, options.n)
        saves = []
        for _ in range(options.repeat):
            cache._dirty = True  # the benchmark rewrites the same records
            saves.append(timed(cache.save))
        loads = [timed(lambda: HashCache(cache.path)) for _ in range(options.repeat)]
        size = cache.path.stat().st_size
    best_save, best_load = min(saves), min(loads)
    print(f"{options.n} entries, {size / 1e6:.2f} MB")
    print(f"write: {best_save[0] * 1000:6.1f} ms wall, {best_save[1] * 1000:6.1f} ms CPU (goal <= 50 ms)")
    print(f"read:  {best_load[0] * 1000:6.1f} ms wall, {best_load[1] * 1000:6.1f} ms CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
