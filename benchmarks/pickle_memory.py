"""Peak memory of one ``.pt`` load against the bytes its budget charged (attack round 3, finding 10).

Run: ``.venv/bin/python benchmarks/pickle_memory.py [--rows N] [--source CHECKOUT]``. Each file is built here,
then scanned and fully decoded in a process forked for it (after torch is imported), which reports its peak RSS
rise (the kernel's high-water mark, reset first: Linux), the peak of numpy's and Python's own allocations
(tracemalloc) and what the budget charged. Files: the attack's (a deflated bfloat16 storage viewed as
[1000, 40000]: refused from its width now) and the widest accepted tensor, [rows, 4096], as deflated bfloat16
(contiguous and a transposed view), a strided float64 view and a stored float32 one. ``--source`` measures
another checkout's decoder. Target: no file raises peak RSS by more than 200 MB (the budget is 256 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "hostile"))
from payloads import storage_zip  # noqa: E402

CHILD = r"""
import json, os, resource, sys, tracemalloc
sys.path.insert(0, sys.argv[1])
from sd_embeddings.errors import EmbeddingError
from sd_embeddings.formats import budget as budgets, decoding, pickles
import torch  # loaded before the first baseline: its import is not a file's cost


def peak_kb():  # the kernel's high-water mark (Linux: reset before each file below)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(path):
    raw = open(path, "rb").read()
    with open("/proc/self/clear_refs", "w") as reset:
        reset.write("5")
    base = peak_kb()
    tracemalloc.start()
    budget = budgets.Budget(path)
    try:
        decoding.scan_file(path, len(raw))
        opened = pickles.open_pickle(raw, path, budget)
        data = decoding.interpret(opened.obj, path, "pt", opened.array)
        outcome = "loaded " + str(tuple(data.vec.shape))
    except EmbeddingError as e:
        outcome = e.status + ": " + e.reason[:70]
    traced = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"outcome": outcome, "rss_mb": (peak_kb() - base) // 1024, "traced_mb": traced // 2**20,
                      "charged_mb": (budgets.MAX_BYTES - budget.bytes) // 2**20}), flush=True)


for path in sys.argv[2:]:  # one forked process per file: each starts from the same clean heap
    pid = os.fork()
    if pid == 0:
        measure(path)
        os._exit(0)
    os.waitpid(pid, 0)
"""


def files(rows: int) -> dict[str, bytes]:
    wide = rows * 4096
    return {
        "attack: bf16 deflated [1000, 40000]": storage_zip(1000, 40_000, pad=(2 * 1000 * 40_000) // 3, zeros=True),
        f"bf16 deflated [{rows}, 4096]": storage_zip(rows, 4096, pad=2 * wide // 3),
        f"bf16 deflated [{rows}, 4096] transposed": storage_zip(rows, 4096, transposed=True, pad=2 * wide // 3),
        f"f64 deflated [{rows}, 4096] transposed": storage_zip(rows, 4096, "DoubleStorage", 8, True, pad=8 * wide // 3),
        f"f32 stored [{rows}, 4096] transposed": storage_zip(rows, 4096, "FloatStorage", 4, True, deflate=False),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout whose decoder is measured (to compare)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sdemb-pickle-memory-"))
    built = files(args.rows)
    paths = []
    for index, raw in enumerate(built.values()):
        paths.append(folder / f"{index}.pt")
        paths[-1].write_bytes(raw)
    result = subprocess.run([sys.executable, "-c", CHILD, str(args.source), *map(str, paths)], capture_output=True,
                            text=True, timeout=600, env=dict(os.environ, PYTHONPATH=str(args.source)))
    if result.returncode:
        sys.exit(f"the measuring process failed: {result.stderr.strip().splitlines()[-1:]}")
    print(f"{'file':42s} {'size':>8s}  {'RSS +MB':>7s} {'traced MB':>9s} {'charged MB':>10s}  outcome")
    for (name, raw), line in zip(built.items(), result.stdout.strip().splitlines()):
        row = json.loads(line)
        print(f"{name:42s} {len(raw) / 2**20:6.1f}MB  {row['rss_mb']:7d} {row['traced_mb']:9d} "
              f"{row['charged_mb']:10d}  {row['outcome']}")


if __name__ == "__main__":
    main()
