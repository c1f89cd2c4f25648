"""Builders for hostile inputs, all made at test time (nothing binary is committed).

Pickles are assembled opcode by opcode so each one asks for exactly the global, trick or structure under test.
"""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image, PngImagePlugin

PROTO2 = b"\x80\x02"
PROTO4 = b"\x80\x04"
STOP = b"."
MARK = b"("
TUPLE = b"t"
REDUCE = b"R"
EMPTY_DICT = b"}"
SETITEM = b"s"
BUILD = b"b"


def text(value: str) -> bytes:
    """BINUNICODE: a str on the stack."""
    raw = value.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def raw_bytes(value: bytes) -> bytes:
    """BINBYTES: a bytes object on the stack (protocol 3+)."""
    return b"B" + struct.pack("<I", len(value)) + value


def integer(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def glob(module: str, name: str) -> bytes:
    """GLOBAL opcode: the classic way a pickle names a callable."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def stack_glob(module: str, name: str) -> bytes:
    """STACK_GLOBAL (protocol 4): module and name come from the stack, so they can be memo tricks."""
    return text(module) + text(name) + b"\x93"


def call(func: bytes, *args: bytes) -> bytes:
    return func + MARK + b"".join(args) + TUPLE + REDUCE


def as_dict(key: str, value: bytes) -> bytes:
    return EMPTY_DICT + text(key) + value + SETITEM


def pickle_file(body: bytes, proto: bytes = PROTO2) -> bytes:
    return proto + body + STOP


def torch_zip(pickle_bytes: bytes, members: dict[str, bytes] | None = None, prefix: str = "archive",
              compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip laid out like ``torch.save``'s: ``<prefix>/data.pkl`` plus storage members."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        archive.writestr(f"{prefix}/data.pkl", pickle_bytes)
        archive.writestr(f"{prefix}/byteorder", b"little")
        for name, blob in (members or {}).items():
            archive.writestr(name, blob)
    return out.getvalue()


def storage(key: str = "0", numel: int = 768, storage_type: str = "FloatStorage") -> bytes:
    """The persistent id of a tensor storage: ('storage', torch.<Type>, key, 'cpu', numel) + BINPERSID."""
    return MARK + text("storage") + glob("torch", storage_type) + text(key) + text("cpu") + integer(numel) + \
        TUPLE + b"Q"


def tensor(size: tuple[int, ...], stride: tuple[int, ...], key: str = "0", numel: int = 768, offset: int = 0) -> bytes:
    """``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`` on the stack."""
    def ints(values: tuple[int, ...]) -> bytes:
        return MARK + b"".join(b"\x8a\x08" + struct.pack("<q", v) for v in values) + TUPLE

    return call(glob("torch._utils", "_rebuild_tensor_v2"), storage(key, numel), integer(offset), ints(size),
                ints(stride), b"\x89", call(glob("collections", "OrderedDict")))


def float_bytes(count: int = 768, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).standard_normal(count).astype("<f4").tobytes()


def safetensors_raw(header: object, data: bytes = b"", header_bytes: bytes | None = None,
                    declared: int | None = None) -> bytes:
    """A safetensors file from a header object (or raw header bytes) and a data section, length overridable."""
    blob = header_bytes if header_bytes is not None else json.dumps(header).encode()
    length = len(blob) if declared is None else declared
    return struct.pack("<Q", length % 2**64) + blob + data


def png(size: tuple[int, int] = (16, 16), text_chunks: dict[str, str] | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in (text_chunks or {}).items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.new("RGB", size, (90, 120, 200)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def png_chunk(kind: bytes, payload: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + payload) if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR declares ``width`` x ``height`` (the classic decompression bomb header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def ti_chunk(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode("ascii")


def storage_zip(rows: int, width: int, kind: str = "BFloat16Storage", itemsize: int = 2, transposed: bool = False,
                deflate: bool = True, pad: int = 0, zeros: bool = False) -> bytes:
    """A torch zip whose one storage holds rows x width values, viewed as [rows, width] (``transposed``: a
    strided view of a [width, rows] layout). ``pad`` adds a stored random member (the zip guard allows members
    to inflate to 4x the file); ``zeros``: values that deflate to almost nothing, as the attack's."""
    numel = rows * width
    stride = (1, rows) if transposed else (width, 1)
    pkl = (b"\x80\x02}X\x0a\x00\x00\x00emb_paramsctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
           b"ctorch\n" + kind.encode() + b"\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ" + struct.pack("<i", numel)
           + b"tQK\x00J" + struct.pack("<i", rows) + b"J" + struct.pack("<i", width) + b"\x86J"
           + struct.pack("<i", stride[0]) + b"J" + struct.pack("<i", stride[1]) + b"\x86\x89}tRs.")
    values = np.zeros(numel, "<f4") if zeros else np.random.default_rng(0).standard_normal(numel).astype("<f4")
    raw = {2: (values.view("<u4") >> 16).astype("<u2").tobytes(), 4: values.tobytes(),
           8: values.astype("<f8").tobytes()}[itemsize]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("archive/data.pkl", pkl)
        archive.writestr(zipfile.ZipInfo("archive/data/0"), raw,
                         compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
        archive.writestr("archive/version", "3\n")
        if pad:
            archive.writestr("archive/pad", os.urandom(pad))
    return out.getvalue()
