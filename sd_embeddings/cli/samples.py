"""``samples DIR``: write a few small sample embeddings, one per format, all named ``sample-...``.

Random vectors (seeded, so the files are the same every time): they show how cards look, they do not draw
anything meaningful. Existing files are left alone unless ``--force``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from ..formats import decoding as formats
from ..library.atomic import write_atomic
from ..records import EmbeddingData

Writer = Callable[[Path], bytes]
"""The bytes of one sample file, given its path (for the stem); ``write_samples`` writes them atomically."""


def _data(rows: int, width: int | tuple[int, int], seed: int) -> EmbeddingData:
    import torch  # only when samples are written: the other commands start without it

    gen = torch.Generator().manual_seed(seed)
    if isinstance(width, tuple):
        vec = {"clip_l": torch.randn(rows, width[0], generator=gen) * 0.01,
               "clip_g": torch.randn(rows, width[1], generator=gen) * 0.01}
    else:
        vec = torch.randn(rows, width, generator=gen) * 0.01
    return EmbeddingData(vec, "sample", step=500, sd_checkpoint_name="sample")


def _safetensors(rows: int, width: int | tuple[int, int], seed: int) -> Writer:
    def write(path: Path) -> bytes:
        from safetensors.torch import save  # torch: only when samples are written

        data = _data(rows, width, seed)
        return save(formats.to_saveable(data), metadata=formats.metadata_for(data, path.stem))

    return write


def _pickle(path: Path) -> bytes:
    import torch

    out = io.BytesIO()
    torch.save(formats.a1111_dict(_data(3, 768, 2), path.stem), out)
    return out.getvalue()


def _image(carrier: str, seed: int) -> Writer:
    return lambda path: formats.encode_image(_data(2, 768, seed), path.stem, carrier)


def _preview(path: Path) -> bytes:
    image = Image.new("RGB", (256, 320))
    draw = ImageDraw.Draw(image)
    for y in range(320):
        draw.line([(0, y), (256, y)], fill=(250 - y // 3, 140 + y // 6, 60 + y // 2))
    draw.ellipse((64, 60, 192, 188), fill=(255, 236, 160))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _text(content: str) -> Writer:
    return lambda path: content.encode("utf-8")


SAMPLES: dict[str, Writer] = {
    "sample-negative.safetensors": _safetensors(2, 768, 1),
    "sample-negative.txt": _text("SD1.5 negative embedding (safetensors). Goes to the negative prompt by itself."),
    "sample-style.pt": _pickle,
    "sample-style.preview.png": _preview,
    "sample-style.json": _text(json.dumps({"description": "A1111 .pt pickle with a preview picture.",
                                           "notes": "", "preferred weight": 0.9}, indent=4)),
    "sample-image.png": _image("text", 3),
    "sample-pixels.png": _image("pixels", 4),
    "sample-sd2.safetensors": _safetensors(1, 1024, 5),
    "sample-xl/sample-xl.safetensors": _safetensors(2, (768, 1280), 6),
}


def write_samples(folder: str | os.PathLike, force: bool = False) -> list[Path]:
    """Write the samples into ``folder``; returns the files written."""
    written = []
    for name, write in SAMPLES.items():
        path = Path(folder, *name.split("/"))
        if path.exists() and not force:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, write(path))
        written.append(path)
    return written


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("samples", help="write a few small sample embeddings (every format)",
                                   description="Write sample-* embeddings of every format into DIR.")
    parser.add_argument("folder", metavar="DIR", help="where to write them (created if missing)")
    parser.add_argument("--force", action="store_true", help="overwrite existing sample files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    blocked = next((p for p in (Path(args.folder), *Path(args.folder).parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        print(f"error: {blocked} is a file, not a folder: give a folder for the samples (created if missing)",
              file=sys.stderr)
        return 2
    written = write_samples(args.folder, force=args.force)
    for path in written:
        print(path)
    print(f"{len(written)} file(s) written to {args.folder}" if written else "samples already there (use --force)")
    return 0
