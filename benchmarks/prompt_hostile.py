"""Hostile prompt shapes: seconds for the whole host path at size n and 4n, and their ratio (4 = linear).

Run: ``.venv/bin/python benchmarks/prompt_hostile.py [--n N] [--shapes a,b]``. Each shape (the ones
``tests/hostile/test_prompt_work.py`` counts, plus the regular-expression ones a line count cannot see) is
encoded as positive and negative prompt by ``encode_report`` (tags, AND, schedule, attention, BREAK, tokenizer,
keyword matching, warnings) over a small library without a model. A quadratic step shows as a ratio near 16.

Measured on 2 shared cores, n = 6000 (``"(a:1.1 " * 6000``, 42 KB): 37 s to parse and 36 s to tokenize before
the linear parsers, ~0.5 s for the whole path after.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sd_embeddings.encode.encoding import encode_report  # noqa: E402
from sd_embeddings.formats.writing import write_safetensors  # noqa: E402
from sd_embeddings.library import Library  # noqa: E402
from sd_embeddings.records import EmbeddingData, Family  # noqa: E402


def letters(count: int) -> str:
    chosen = random.Random(count)
    return "".join(chosen.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(count))


SHAPES = {
    "deep round": lambda n: "(a:1.1 " * n,
    "deep square": lambda n: "[a:1.1 " * n,
    "deep mixed": lambda n: "([a " * n,
    "many brackets": lambda n: "(a) [b] (c:1.2) [d|e] [f:g:3] " * (n // 4),
    "long word": lambda n: letters(4 * n),
    "near misses": lambda n: "emb_onx styleabcdf " * (n // 2),
    "BREAK": lambda n: "a BREAK " * n,
    "blank run": lambda n: "a" + " " * 8 * n + "b",
    "blank run colon": lambda n: "a:" + " " * 8 * n,
    "unclosed tags": lambda n: "<a:" * n,
    "edit digits": lambda n: "[a:b:" + "1" * 8 * n + "x]",
    "expanding unicode": lambda n: "\ufdfa\ufb03\u0130" * n,
}


def library(folder: Path) -> Library:
    import torch

    for name, rows in (("emb_one", 1), ("styleabcde", 2)):
        write_safetensors(EmbeddingData(torch.ones(rows, 768), "emb_params"), folder / f"{name}.safetensors", name)
    found = Library([folder], family=Family.SD1, background_hashing=False)
    found.refresh()
    return found


def seconds(lib: Library, text: str) -> float:
    started = time.perf_counter()
    encode_report(lib, text, text)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1500, help="size unit (default 1500; 6000 for the issue's case)")
    parser.add_argument("--shapes", default="", help="comma-separated shape names (default: all)")
    args = parser.parse_args()
    chosen = [s for s in args.shapes.split(",") if s] or list(SHAPES)
    with tempfile.TemporaryDirectory() as tmp:
        lib = library(Path(tmp))
        seconds(lib, "warm (emb_one) up")
        print(f"{'shape':18s} {'chars n':>9s} {'s at n':>8s} {'s at 4n':>8s} {'ratio':>6s}")
        for name in chosen:
            make = SHAPES[name]
            small, large = seconds(lib, make(args.n)), seconds(lib, make(4 * args.n))
            print(f"{name:18s} {len(make(args.n)):9d} {small:8.3f} {large:8.3f} {large / max(small, 1e-6):6.1f}")


if __name__ == "__main__":
    main()
