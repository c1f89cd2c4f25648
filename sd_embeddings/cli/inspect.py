"""``inspect FILE``: everything about one file — container, keys, shapes, dtypes, family, vector norms,
NaN/Inf/zero vectors, hashes and stored metadata. Exit 1 when the file cannot be used as an embedding."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EmbeddingError
from ..formats import decoding as formats
from ..formats import image_format, pickles, safetensors_file
from ..formats.text import json_text
from ..library.collisions import compatibility
from ..library.reading import EMPTY_FILE
from ..records import Entry, Family, Status
from .arguments import family_arg

if TYPE_CHECKING:
    import torch



def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("inspect", help="show what one embedding file holds",
                                   description="Show keys, shapes, family, vector norms and metadata of a file.")
    parser.add_argument("file", help="an embedding file (.pt, .bin, .safetensors, .png, .webp)")
    parser.add_argument("--family", type=family_arg, metavar="sd1|sd2|sdxl",
                        help="also say whether it works with this model family")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = args.file
    if not os.path.isfile(path):
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    report = inspect_file(path, args.family)
    if args.json:
        print(json_text(report, indent=2))  # strict UTF-8 JSON whatever the file's name or stored strings
    else:
        print_report(report)
    return 0 if report["status"] in (Status.LOADED.value, Status.INCOMPATIBLE.value) else 1


def inspect_file(path: str, family: Family | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {"file": os.path.abspath(path), "size": os.path.getsize(path)}
    if report["size"] == 0:  # scan's words for it (library/reading.py), not the pickle reader's "not a PyTorch file"
        report.update(status=Status.NOT_AN_EMBEDDING.value, reason=EMPTY_FILE)
        return report
    try:
        raw = formats.read_file(path)
        report["sha256"] = hashlib.sha256(raw).hexdigest()
        report["shorthash"] = report["sha256"][:12]
        report["container"] = formats.sniff(raw, formats.format_of(path) or "unknown")
        report["tensors"], report["metadata"] = _raw_contents(raw, path, report["container"])
        data = formats.decode(raw, path)
    except EmbeddingError as e:
        report.update(status=e.status, reason=e.reason)
        return report
    header = formats.header_of(data)
    entry = Entry(path=path, root="", folder="", keyword=data.name or os.path.splitext(os.path.basename(path))[0],
                  format=formats.format_of(path) or "", size=report["size"], mtime_ns=0, status=Status.LOADED,
                  header=header)
    ok, reason = compatibility(entry, family)
    report.update(status=(Status.LOADED if ok else Status.INCOMPATIBLE).value, reason=reason,
                  keyword=entry.keyword, layout=data.layout, family=header.shape.family.value,
                  vectors=header.shape.vectors, width=header.shape.width, step=data.step,
                  sd_checkpoint=data.sd_checkpoint, sd_checkpoint_name=data.sd_checkpoint_name)
    return report


def _tensor_stats(name: str, tensor: torch.Tensor) -> dict[str, Any]:
    import torch  # inspect reads values; the command line starts without torch

    rows = tensor.detach().reshape(-1, tensor.shape[-1]) if tensor.dim() >= 1 and tensor.numel() else tensor
    info: dict[str, Any] = {"key": name, "shape": list(tensor.shape), "dtype": str(tensor.dtype).replace("torch.", "")}
    if tensor.is_floating_point() and tensor.numel() and tensor.dim() >= 1:
        rows = rows.to(torch.float32)
        finite = torch.isfinite(rows)
        bad = (~finite).any(dim=1)
        norms = torch.where(finite, rows, torch.zeros_like(rows)).norm(dim=1)
        # a NaN/Inf row is NaN/Inf, not zero: its finite part may well be all zeros
        info.update(norms=[None if flag else round(float(n), 4) for n, flag in zip(norms[:80], bad[:80])],
                    nan_inf_vectors=int(bad.sum()), zero_vectors=int(((norms == 0) & ~bad).sum()))
    return info


def _raw_contents(raw: bytes, path: str, container: str) -> tuple[list[dict], dict[str, Any]]:
    """Every tensor in the file (before any conversion) and the non-tensor values stored beside them."""
    if container == "safetensors":
        header = safetensors_file.parse_header(raw, len(raw), path)
        tensors = safetensors_file.read_tensors(raw, header, path)
        specs = header.tensors
        stats = [dict(_tensor_stats(k, v), dtype=specs[k].dtype_name) for k, v in tensors.items()]
        return stats, dict(header.metadata)
    if container == "pickle":
        obj = pickles.load_pickle(raw, path)
    else:
        obj = image_format.decode_image(raw, path)
    stats: list[dict] = []
    metadata: dict[str, Any] = {}
    import torch

    stack: list[tuple[str, Any]] = [("", obj)]
    seen: set[int] = set()  # pickles may share one dict many times over (memo): each is listed once
    while stack and len(stats) < 100 and len(seen) < 10_000:
        prefix, node = stack.pop()
        if isinstance(node, np.ndarray):  # pickled tensors are decoded without torch
            node = torch.from_numpy(node)
        if isinstance(node, torch.Tensor):
            stats.append(_tensor_stats(prefix, node))
        elif isinstance(node, dict) and id(node) not in seen:
            seen.add(id(node))
            stack.extend((f"{prefix}.{k}" if prefix else str(k), v) for k, v in reversed(list(node.items()))
                         if not str(k).startswith("_") or k == "_parameters")
        elif prefix.count(".") == 0 and (node is None or isinstance(node, (str, float, bool))
                                         or isinstance(node, int) and node.bit_length() <= 64):
            metadata[prefix] = node
    return stats, metadata


def print_report(report: dict[str, Any]) -> None:
    print(f"file:      {report['file']}  ({report['size']:,} bytes)")
    if "sha256" in report:
        print(f"sha256:    {report['sha256']}  (short {report['shorthash']})")
    if "container" in report:
        print(f"container: {report['container']}" + (f", layout {report['layout']}" if "layout" in report else ""))
    for tensor in report.get("tensors", []):
        line = f"  {tensor['key'] or '(tensor)'}: {tensor['shape']} {tensor['dtype']}"
        if "norms" in tensor:
            shown = ["NaN/Inf" if n is None else f"{n:.3g}" for n in tensor["norms"][:8]]
            norms = ", ".join(shown) + (" ..." if len(tensor["norms"]) > 8 else "")
            line += f"  norms [{norms}]  NaN/Inf vectors {tensor['nan_inf_vectors']}, zero {tensor['zero_vectors']}"
        print(line)
    for key, value in report.get("metadata", {}).items():
        print(f"  {key} = {value!r}")
    if "family" in report:
        print(f"keyword:   {report['keyword']}   family: {report['family']}   vectors: {report['vectors']}   "
              f"width: {report['width']}   step: {report['step']}")
    print(f"status:    {report['status']}" + (f" — {report['reason']}" if report.get("reason") else ""))
