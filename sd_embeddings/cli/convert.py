"""``convert FILE... [--out DIR]``: .pt/.bin/image -> .safetensors (or a PNG), verified by reading it back.

Never overwrites without ``--force``. The keyword stays the file stem (for images: the name stored inside).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import EmbeddingError
from ..formats import decoding as formats
from ..library.atomic import write_atomic
from ..records import EmbeddingData


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("convert", help="convert embeddings to .safetensors (or PNG)",
                                   description="Convert .pt/.bin/image embeddings to .safetensors, "
                                               "checking that the written file reads back identically.")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: beside each input)")
    parser.add_argument("--to", choices=("safetensors", "png", "png-pixels"), default="safetensors",
                        help="target: safetensors (default), png (text chunk) or png-pixels (pixel-encoded)")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    parser.set_defaults(func=run)


def target_path(source: str, out_dir: str | None, to: str) -> str:
    stem = os.path.splitext(os.path.basename(source))[0]
    suffix = ".safetensors" if to == "safetensors" else ".png"
    return os.path.join(out_dir or os.path.dirname(os.path.abspath(source)), stem + suffix)


def encoded(data: EmbeddingData, name: str, to: str) -> bytes:
    if to == "safetensors":
        from safetensors.torch import save

        return save(formats.to_saveable(data), metadata=formats.metadata_for(data, name))
    return formats.encode_image(data, name, carrier="pixels" if to == "png-pixels" else "text")


def same_vectors(a: EmbeddingData, b: EmbeddingData) -> bool:
    import torch  # a decoded embedding holds torch tensors already: this import is free by now

    if isinstance(a.vec, dict) != isinstance(b.vec, dict):
        return False
    if isinstance(a.vec, dict):
        return a.vec.keys() == b.vec.keys() and all(torch.equal(a.vec[k], b.vec[k]) for k in a.vec)
    return torch.equal(a.vec, b.vec)


def convert_one(source: str, out_dir: str | None, to: str, force: bool) -> str:
    """Convert one file; returns the written path. Raises EmbeddingError or FileExistsError."""
    data = formats.decode_file(source)
    name = data.name if formats.format_of(source) == "image" and data.name else \
        os.path.splitext(os.path.basename(source))[0]
    target = target_path(source, out_dir, to)
    if os.path.abspath(target) == os.path.abspath(source):
        raise FileExistsError(f"{target}: output would replace the input")
    if os.path.exists(target) and not force:
        raise FileExistsError(f"{target} exists (use --force to overwrite)")
    payload = encoded(data, name, to)
    back = formats.decode(payload, target)
    if not same_vectors(data, back):
        raise EmbeddingError(target, "round trip changed the vectors; nothing written")
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    write_atomic(target, payload)
    return target


def run(args: argparse.Namespace) -> int:
    failures = 0
    for source in args.files:
        try:
            target = convert_one(source, args.out, args.to, args.force)
        except (EmbeddingError, FileExistsError, OSError) as e:
            failures += 1
            print(f"error: {source}: {getattr(e, 'reason', None) or e}", file=sys.stderr)
            continue
        print(f"{source} -> {target} (verified)")
        if os.path.dirname(os.path.abspath(target)) == os.path.dirname(os.path.abspath(source)):
            print(f"  note: both files define the keyword '{os.path.splitext(os.path.basename(source))[0]}'; "
                  "remove the original to avoid a duplicate", file=sys.stderr)
    return 1 if failures else 0
