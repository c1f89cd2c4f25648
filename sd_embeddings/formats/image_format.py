"""Embeddings carried by images, in the two encodings the WebUI's training writes.

1. A PNG text chunk ``sd-ti-embedding``: base64 of JSON, tensors as ``{"TORCHTENSOR": nested lists}``.
2. Pixels: zlib-compressed JSON split into nibbles, XOR-ed with an LCG stream, stored in two blocks left and
   right of the picture, each separated from it by a black column. Decorations live in the high nibble only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import importlib
import io
import json
import zlib
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, PngImagePlugin

from ..errors import CorruptFileError, NotAnEmbeddingError, UnsupportedFileError
from . import json_limits, png_chunks
from .lazy_torch import is_torch_tensor

TEXT_CHUNK_KEY = "sd-ti-embedding"
MAX_SEARCH_PIXELS = 8_000_000
"""Pictures up to this size are searched for data hidden in their pixels (the WebUI's cards are about 1 MP).
Checked from the header before decoding: decoding costs up to ~11 bytes per pixel here (Pillow's copy, the RGB
array, the nibbles), so this keeps one picture under ~100 MB. Pillow's own ``MAX_IMAGE_PIXELS`` is a process-wide
setting the WebUI may change or disable, so it is not relied on."""
MAX_JSON_BYTES = 16 * 1024 * 1024
"""Embedding JSON larger than this is refused before parsing (75 SDXL vectors, the most a prompt chunk holds,
take about 3 MB as the WebUI writes them)."""
JSON_LIMITS = json_limits.JsonLimits(size=MAX_JSON_BYTES, values=1_000_000, containers=100_000, strings=10_000)
_LCG_A, _LCG_C, _LCG_M = 1664525, 1013904223, 2**32
_lcg_cache = np.zeros(0, dtype=np.uint8)


def _lcg_stream(count: int) -> np.ndarray:
    """First ``count`` values of the WebUI's LCG (``seed % 255``, seed starting at 0), computed in vector blocks
    written straight into the uint8 result (one byte per value, never a full-length 64-bit array)."""
    global _lcg_cache
    if _lcg_cache.size >= count:
        return _lcg_cache[:count]
    block = 4096
    current = np.zeros(block, dtype=np.uint64)
    seed = 0
    for i in range(block):
        seed = (_LCG_A * seed + _LCG_C) % _LCG_M
        current[i] = seed
    # jump a whole block ahead at once: s[i + block] = A_block * s[i] + C_block (mod 2**32)
    a_block, c_block = 1, 0
    for _ in range(block):
        a_block, c_block = (_LCG_A * a_block) % _LCG_M, (_LCG_A * c_block + _LCG_C) % _LCG_M
    stream = np.empty(-(-count // block) * block, dtype=np.uint8)
    for start in range(0, stream.size, block):
        if start:
            current = (current * np.uint64(a_block) + np.uint64(c_block)) % np.uint64(_LCG_M)
        stream[start: start + block] = current % np.uint64(255)
    if stream.size > _lcg_cache.size:  # another thread may have grown it meanwhile: never shrink it
        _lcg_cache = stream
    return stream[:count]


def _xor_block(block: np.ndarray) -> np.ndarray:
    stream = _lcg_stream(block.size).reshape(block.shape) & 0x0F
    return np.bitwise_xor(block.astype(np.uint8), stream)


class _TensorDecoder(json.JSONDecoder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, object_hook=self._hook, **kwargs)

    @staticmethod
    def _hook(obj: dict) -> Any:
        if "TORCHTENSOR" in obj:
            # numpy until the vectors are used: ``decode`` makes them torch tensors, a scan never needs torch
            return np.array(obj["TORCHTENSOR"], dtype=np.float64).astype(np.float32)
        return obj


def _tensor_json(data: dict) -> str:
    def default(obj: Any) -> Any:
        if is_torch_tensor(obj):
            return {"TORCHTENSOR": obj.detach().cpu().double().numpy().tolist()}
        raise TypeError(f"cannot store {type(obj).__name__} in an image embedding")

    return json.dumps(data, default=default)


def _decode_json(raw: bytes, path: str, what: str) -> dict:
    json_limits.check(raw, JSON_LIMITS, path, what)
    try:
        data = json.loads(raw.decode("utf-8"), cls=_TensorDecoder)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError, RecursionError) as e:
        raise CorruptFileError(path, f"{what} is not valid embedding JSON ({type(e).__name__})") from e
    if not isinstance(data, dict):
        raise CorruptFileError(path, f"{what} does not hold an embedding object")
    return data


def decode_text_chunk(text: str, path: str) -> dict:
    if len(text) > MAX_TEXT_CHARS:
        raise CorruptFileError(path, f"the sd-ti-embedding text chunk is larger than {MAX_JSON_BYTES // 2**20} MB "
                                     "of embedding JSON (refused)")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=False)
    except (binascii.Error, UnicodeEncodeError, ValueError) as e:
        raise CorruptFileError(path, "the sd-ti-embedding text chunk is not base64") from e
    return _decode_json(raw, path, "the sd-ti-embedding text chunk")


MAX_TEXT_CHARS = MAX_JSON_BYTES * 4 // 3 + 4
"""The base64 text of the largest JSON accepted."""


def _crop_black(pixels: np.ndarray) -> np.ndarray:
    mask = (pixels > 0).all(2)
    cols, rows = mask.any(0), mask.any(1)
    if not cols.any():
        return pixels[:0, :0]
    c0, c1 = cols.argmax(), mask.shape[1] - cols[::-1].argmax()
    r0, r1 = rows.argmax(), mask.shape[0] - rows[::-1].argmax()
    return pixels[r0:r1, c0:c1]


def decode_pixels(pixels: np.ndarray, path: str) -> dict | None:
    """Data hidden in an RGB pixel array, or None when the image carries none (a plain picture)."""
    nibbles = _crop_black(pixels) & 0x0F
    black = np.where(nibbles.sum(axis=(0, 2)) == 0)[0]
    if black.size < 2:
        return None
    lower, upper = nibbles[:, : black.min(), :], nibbles[:, black.max() + 1:, :]
    if lower.size == 0 or lower.shape != upper.shape:
        return None
    payload = ((_xor_block(upper) << 4) | _xor_block(lower)).tobytes()
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(payload, MAX_JSON_BYTES)
    except zlib.error:
        return None
    if inflater.unconsumed_tail:
        raise CorruptFileError(path, f"embedded pixel data expands beyond {MAX_JSON_BYTES // 2**20} MB (refused)")
    if not inflater.eof:
        return None
    return _decode_json(raw, path, "the data hidden in the pixels")


_PLUGINS = {".avif": "pillow_avif", ".jxl": "pillow_jxl"}


def _load_plugin(path: str) -> None:
    """AVIF/JXL readers register themselves with Pillow on import (as the WebUI imports pillow_avif)."""
    module = _PLUGINS.get(path[-5:].lower())
    if module:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


EMBEDDING_IMAGE_FORMATS = ("PNG", "WEBP", "AVIF", "JXL")
"""The only formats Pillow may use on a file from the embeddings folder. Pillow knows dozens (EPS hands the
file to Ghostscript, TIFF and FITS allocate what their headers declare): none of those ever carries an embedding."""


def _allowed_formats() -> list[str]:
    Image.init()  # registers the formats Pillow (and an imported AVIF/JXL plugin) can read
    return [name for name in EMBEDDING_IMAGE_FORMATS if name in Image.OPEN]


def open_image(raw: bytes, path: str) -> Image.Image:
    """The picture, opened lazily (header only) and refused when it declares more than ``MAX_SEARCH_PIXELS``."""
    _load_plugin(path)
    try:
        image = Image.open(io.BytesIO(raw), formats=_allowed_formats())
    except Image.DecompressionBombError as e:
        raise NotAnEmbeddingError(path, "plain image, too large to search for embedding data "
                                        "(decompression bomb guard)") from e
    except Exception as e:
        lowered = path.lower()
        if lowered.endswith((".avif", ".jxl")):
            plugin = "pillow-avif-plugin" if lowered.endswith(".avif") else "pillow-jxl-plugin"
            raise UnsupportedFileError(path, f"reading this image needs the {plugin} package") from e
        raise CorruptFileError(path, f"not a readable image ({type(e).__name__})") from e
    _check_pixels(image.width, image.height, path)
    return image


def _check_pixels(width: int, height: int, path: str) -> None:
    if width * height > MAX_SEARCH_PIXELS:
        raise NotAnEmbeddingError(path, f"plain image of {width}x{height} pixels, too large to search for "
                                        "embedding data (decompression bomb guard)")


def _rgb_pixels(raw: bytes, path: str) -> np.ndarray:
    """The RGB pixels as an array; Pillow's own copies are released before this returns."""
    image = open_image(raw, path)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def decode_image(raw: bytes, path: str) -> dict:
    """The embedding dict inside an image: the text chunk first, then the pixels. Sizes are checked from the
    headers before anything is inflated or decoded."""
    if raw.startswith(png_chunks.SIGNATURE):
        png = png_chunks.read_png(raw, path)
        text = png_chunks.text_value(raw, png, TEXT_CHUNK_KEY, MAX_TEXT_CHARS, path)
        if text is not None:
            return decode_text_chunk(text, path)
        _check_pixels(png.width, png.height, path)
        if png.has_ancillary:  # Pillow would parse (and keep) every text chunk; the pixels need none of them
            raw = png_chunks.pixels_only(raw, png)
    try:
        data = decode_pixels(_rgb_pixels(raw, path), path)
    except (OSError, SyntaxError, ValueError) as e:
        raise CorruptFileError(path, f"image data is damaged ({type(e).__name__}: {str(e)[:60]})") from e
    if data is None:
        raise NotAnEmbeddingError(path, "plain image without embedding data (used as a picture only)")
    return data


def _card(name: str, size: int = 256) -> Image.Image:
    image = Image.new("RGB", (size, size), (40, 44, 60))
    draw = ImageDraw.Draw(image)
    for i in range(0, size, 8):
        draw.line([(i, 0), (0, i)], fill=(60 + i // 4, 70, 110))
    draw.text((12, size - 28), f"<{name}>"[:36], fill=(240, 240, 240))
    return image


def encode_text_chunk(data: dict, name: str) -> bytes:
    """A PNG card carrying ``data`` in an ``sd-ti-embedding`` text chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text(TEXT_CHUNK_KEY, base64.b64encode(_tensor_json(data).encode()).decode("ascii"))
    out = io.BytesIO()
    _card(name).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def encode_pixels(data: dict, name: str, image: Image.Image | None = None) -> bytes:
    """A PNG with ``data`` hidden in its pixels, decodable by the WebUI and by ``decode_pixels``."""
    picture = (image or _card(name)).convert("RGB")
    payload = np.frombuffer(zlib.compress(_tensor_json(data).encode(), level=9), np.uint8)
    height, depth = picture.height, 3
    size = payload.size + (height - payload.size % height)
    size += height * depth - size % (height * depth)
    blocks = []
    for nibbles in (payload & 0x0F, payload >> 4):
        block = _xor_block(np.resize(nibbles, size).reshape((height, -1, depth)))
        shade = (np.arange(block.size, dtype=np.uint32).reshape(block.shape) * 37 % 11 + 4).astype(np.uint8)
        blocks.append(Image.fromarray(block | (shade << 4), mode="RGB"))
    low, high = blocks
    canvas = Image.new("RGB", (picture.width + low.width + high.width + 2, height), (0, 0, 0))
    canvas.paste(low, (0, 0))
    canvas.paste(picture, (low.width + 1, 0))
    canvas.paste(high, (low.width + 1 + picture.width + 1, 0))
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()
