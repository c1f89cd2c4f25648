"""``encode PROMPT``: is my embedding working? Chunks, embeddings used, warnings, TI hashes, conditioning.

``--json`` prints the object ``encoding.encode_report`` returns (documented there and in the README). Without
``--model`` no text encoder runs (fast, light): tokens, chunks, embeddings, warnings, hashes and shapes only.
Chunks and parts are numbered from 1 here and on the standalone page; ``--json`` keeps 0-based indexes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from ..encode import loading, text_encoders
from ..encode.encoding import encode_report, pick_family
from ..library import Library
from ..library.hashing import HashCache, default_cache_path
from ..prompt.syntax import DEFAULT_STEPS
from ..prompt.tokenizer import for_model
from .arguments import USAGE_ERROR, add_explicit_only, at_least_one, family_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("encode", help="show how a prompt reaches the text encoder, embeddings included",
                                   description="Tokenize, match embeddings, chunk and encode a prompt as the "
                                               "WebUI does, and say which embeddings were used and why not.")
    parser.add_argument("prompt", metavar="PROMPT")
    parser.add_argument("--negative", default="", metavar="TEXT", help="negative prompt")
    parser.add_argument("--family", type=family_arg, metavar="sd1|sd2|sdxl",
                        help="model family (default: the --model's, else sd1)")
    parser.add_argument("--folder", action="append", metavar="DIR",
                        help="embeddings folder, repeatable (default: embeddings)")
    parser.add_argument("--model", metavar="PATH",
                        help="local diffusers folder, text-encoder folder or .safetensors checkpoint: runs its text "
                             "encoder for the conditioning values (default: none; tokens, embeddings and shapes only)")
    parser.add_argument("--clip-skip", type=at_least_one, default=1, metavar="N",
                        help="CLIP skip, 1 to 12 (default 1); SD1, and SDXL's CLIP-L with --sdxl-clip-l-skip")
    parser.add_argument("--sdxl-clip-l-skip", action="store_true",
                        help="apply --clip-skip to SDXL's CLIP-L too (the WebUI's 'Clip skip SDXL' option)")
    parser.add_argument("--steps", type=at_least_one, default=DEFAULT_STEPS, metavar="N",
                        help=f"sampling steps for prompt editing [a:b:when] and [a|b] (default {DEFAULT_STEPS})")
    add_explicit_only(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folders = args.folder or ["embeddings"]
    missing = [folder for folder in folders if not os.path.isdir(folder)]
    if missing:
        print(f"error: not a folder: {', '.join(missing)} (--folder takes an existing embeddings folder)",
              file=sys.stderr)
        return USAGE_ERROR
    if args.model and not os.path.exists(args.model):
        print(f"error: no such model path: {args.model}", file=sys.stderr)
        return USAGE_ERROR
    library = Library(folders, hash_cache=HashCache(default_cache_path()), background_hashing=False)
    try:
        if args.family is not None:
            text_encoders.check_clip_skip(args.family, args.clip_skip)  # before a model loads for minutes
        started = time.monotonic()
        if args.model and loading.loaded(args.model) is None:
            print(f"Loading the text encoder from {args.model} ...", file=sys.stderr, flush=True)
        family = pick_family(library, args.family, args.model)
        library.set_family(family)
        library.refresh()
        report = encode_report(library, args.prompt, args.negative, family, args.model, clip_skip=args.clip_skip,
                               steps=args.steps, sdxl_clip_l_skip=args.sdxl_clip_l_skip,
                               bare_keywords=not args.explicit_only)
        if args.model:
            print(f"Encoded in {time.monotonic() - started:.1f} s", file=sys.stderr)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return USAGE_ERROR
    library.hash_cache.save()
    for warning in report["warnings"]:
        if warning["kind"] == "not-finite":
            print(f"warning: ({warning['prompt']}) {warning['message']}", file=sys.stderr)
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print_report(report, for_model(args.model))
    return 0


def model_line(report: dict[str, Any]) -> str:
    if report["random_weights"]:
        source = "random weights (tests only: shapes are real, values are not)"
    elif report["model"]:
        source = report["model"]
    else:
        source = "none (give --model PATH for conditioning values; tokens, embeddings and shapes need none)"
    return f"Model: {report['family']}, {source}"


def print_report(report: dict[str, Any], tokenizer: Any) -> None:
    print(model_line(report))
    for name in ("positive", "negative"):
        prompt = report[name]
        count = len(prompt["chunks"])
        print(f"\n{name.capitalize()} prompt: {prompt['token_count']}/{prompt['token_limit']} tokens, "
              f"{count} chunk{'s' if count != 1 else ''}")
        if prompt.get("extra_networks"):
            print(f"  extra networks (not text): {' '.join(prompt['extra_networks'])}")
        parts = prompt["parts"]
        for index, part in enumerate(parts):
            if len(parts) > 1:
                print(f"  part {index + 1}: {part_label(part, report['steps'])}: {part['text']!r}")
            for chunk_index, chunk in enumerate(part["chunks"]):
                text = chunk_text(chunk, [e for e in part["embeddings"] if e["chunk"] == chunk_index], tokenizer)
                print(f"  chunk {chunk_index + 1}: {chunk['token_count']}/75  {text}")
    print("\nEmbeddings used:" if report["embeddings"] else "\nEmbeddings used: none")
    for e in report["embeddings"]:
        print(f"  {e['keyword']}  {e['file']}  {e['vectors']} vector{'s' if e['vectors'] != 1 else ''}  "
              f"weight {e['weight']:g}  {e['prompt']}{where(report, e)} chunk {e['chunk'] + 1} "
              f"position {e['position']}")
    print("\nWarnings:" if report["warnings"] else "\nWarnings: none")
    for w in report["warnings"]:
        print(f"  [{w['kind']}] ({w['prompt']}) {w['message']}")
    print(f"\n{report['ti_hashes_item'] or 'TI hashes: (none)'}")
    print("\nConditioning:")
    for name in ("positive", "negative"):
        for index, part in enumerate(report[name]["parts"]):
            pooled = f", pooled {part['pooled_shape']}" if part["pooled_shape"] else ""
            checksum = f"{part['checksum']}" if part["checksum"] is not None else \
                "not computed (no --model)" if not report["encoded"] else "none (NaN/Inf values)"
            label = f" part {index + 1}" if len(report[name]["parts"]) > 1 else ""
            print(f"  {name}{label}: shape {part['shape']}{pooled}, checksum {checksum}")


def where(report: dict[str, Any], embedding: dict[str, Any]) -> str:
    return f" part {embedding['part'] + 1}" if len(report[embedding["prompt"]]["parts"]) > 1 else ""


def part_label(part: dict[str, Any], steps: int) -> str:
    """``AND 2, weight 0.5, steps 6-20 of 20``: where a part of a prompt is used (sub-prompts counted from 1)."""
    ranges = ", ".join(f"{first}" if first == last else f"{first}-{last}" for first, last in part["steps"])
    return f"AND {part['and_index'] + 1}, weight {part['weight']:g}, steps {ranges} of {steps}"


def chunk_text(chunk: dict[str, Any], placed: list[dict[str, Any]], tokenizer: Any) -> str:
    """The chunk's body as words, each embedding shown as ``<keyword xN>``, padding left out."""
    body = chunk["tokens"][1:1 + chunk["token_count"]]
    starts = {e["position"] - 1: e for e in placed}
    words: list[str] = []
    run: list[int] = []
    position = 0

    def flush() -> None:
        if run:
            words.append(tokenizer.decode(run) if hasattr(tokenizer, "decode") else " ".join(map(str, run)))
            run.clear()

    while position < len(body):
        if position in starts:
            flush()
            e = starts[position]
            words.append(f"<{e['keyword']} x{e['vectors']}>")
            position += e["vectors"]
        else:
            run.append(body[position])
            position += 1
    flush()
    return " ".join(words)
