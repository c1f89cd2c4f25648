"""Prompt benchmark: a 150-token prompt with 0, 3 and 10 embeddings against a library of 10,000 entries.

Run: ``.venv/bin/python benchmarks/prompt.py [--entries N] [--repeat N] [--layers N]``. Prints the one-off
costs (scan, keyword index), the matching cost per prompt and the encode time (tokenize + match + chunk + SD1
text encoder, real ViT-L/14 configuration) with the ratio over the plain prompt.
Targets: embeddings add <= 5 % over the plain prompt; matching <= 1 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sd_embeddings.encode import conditioning, text_encoders
from sd_embeddings.formats import decoding as formats  # noqa: E402
from sd_embeddings.library import Library  # noqa: E402
from sd_embeddings.prompt.chunks import indexes_for, tokenize_prompt  # noqa: E402
from sd_embeddings.prompt.tokenizer import bundled  # noqa: E402
from sd_embeddings.records import EmbeddingData, Family  # noqa: E402

WORDS = ["masterpiece", "best", "quality", "portrait", "of", "a", "woman", "standing", "in", "a", "field", "of",
         "flowers", "at", "sunset", "dramatic", "lighting", "highly", "detailed", "sharp", "focus"]


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def write_library(folder: Path, count: int) -> None:
    generator = torch.Generator().manual_seed(0)
    for i in range(count):
        data = EmbeddingData(torch.randn(1 + i % 4, 768, generator=generator), "emb_params")
        formats.write_safetensors(data, folder / f"style{i:05d}-{WORDS[i % len(WORDS)]}.safetensors", "x")


def prompt_with(embeddings: int, tokens: int = 128) -> str:
    """``tokens`` ordinary words (about 150 tokens with the commas) with ``embeddings`` keywords spread through it."""
    words = [WORDS[i % len(WORDS)] for i in range(tokens)]
    for k in range(embeddings):
        index = 7 + k * (tokens - 10) // max(embeddings, 1)
        words[index] = f"style{k * 997:05d}-{WORDS[(k * 997) % len(WORDS)]}"
    return ", ".join(" ".join(words[i:i + 6]) for i in range(0, len(words), 6))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--layers", type=int, default=None, help="encoder depth (default: the real 12)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_library(Path(tmp), args.entries)
        print(f"wrote {args.entries} embedding files: {time.perf_counter() - start:.1f} s")
        library = Library([tmp], family=Family.SD1, background_hashing=False)
        start = time.perf_counter()
        library.refresh()
        print(f"scan: {time.perf_counter() - start:.1f} s, {len(library.usable())} usable")
        tok = bundled()
        start = time.perf_counter()
        indexes = indexes_for(library, tok, Family.SD1)
        print(f"keyword index (once per library change): {(time.perf_counter() - start) * 1000:.0f} ms, "
              f"{len(indexes.usable)} keywords")
        encoders = text_encoders.random_encoders(Family.SD1, args.layers)
        texts = {count: prompt_with(count) for count in (0, 3, 10)}
        timings: dict[int, list[float]] = {count: [] for count in texts}
        for count, text in texts.items():
            tokens = tokenize_prompt(text, tok, indexes)
            assert len(tokens.placements) == count, (count, len(tokens.placements))
            conditioning.encode(tokens, encoders, library.load)  # warm the vector cache and the model
        for _ in range(args.repeat):  # interleaved, so load from other processes hits every variant alike
            for count, text in texts.items():
                start = time.perf_counter()
                conditioning.encode(tokenize_prompt(text, tok, indexes), encoders, library.load)
                timings[count].append((time.perf_counter() - start) * 1000)
        plain_ms = statistics.median(timings[0])
        for count, text in texts.items():
            tokens = tokenize_prompt(text, tok, indexes)
            match_ms = median_ms(lambda text=text: tokenize_prompt(text, tok, indexes), args.repeat * 20)
            bare_ms = median_ms(lambda text=text: tokenize_prompt(text, tok, None), args.repeat * 20)
            total_ms = statistics.median(timings[count])
            print(f"{count:2d} embeddings, {tokens.token_count} tokens, {len(tokens.chunks)} chunks: "
                  f"encode {total_ms:7.1f} ms (x{total_ms / plain_ms:.3f} of plain), tokenize+match+chunk "
                  f"{match_ms:.3f} ms, of which matching {max(0.0, match_ms - bare_ms):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
