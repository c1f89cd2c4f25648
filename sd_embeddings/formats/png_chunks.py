"""PNG read at the chunk level, so sizes are known and capped before anything is inflated or decoded.

``read_png(raw)`` lists the chunks (type and byte range) and the IHDR fields; ``text_value`` finds one text entry
(``tEXt``, ``zTXt`` or ``iTXt``) by keyword with every payload capped, compressed ones inflated with a limit;
``pixels_only`` is the same picture without its ancillary chunks, for Pillow to decode the pixels without
also parsing (and holding) whatever text the file carries.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import CorruptFileError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CRITICAL = (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND")
_TEXT = (b"tEXt", b"zTXt", b"iTXt")
MAX_CHUNKS = 100_000
"""Chunks kept in the list (pixels and text); real PNGs have tens to a few thousand. Each costs ~150 bytes, and a
64 MB file of empty chunks would otherwise list 5 million of them."""
MAX_CHUNKS_WALKED = 1_000_000
"""Chunks of any kind looked at (a bound on the walk's time)."""
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
"""Samples per pixel by colour type (grey, RGB, palette, grey+alpha, RGBA)."""


@dataclass(frozen=True)
class Png:
    width: int
    height: int
    bit_depth: int
    color_type: int
    chunks: list[tuple[bytes, int, int]]
    """(type, start of data, end of data) in file order: the critical and text chunks only."""
    has_ancillary: bool
    """Any chunk besides the ones needed to draw the picture (text, colour profile, private...)."""

    @property
    def bytes_per_pixel(self) -> int:
        return max(1, _CHANNELS.get(self.color_type, 4) * self.bit_depth // 8)


def read_png(raw: bytes, path: str) -> Png:
    """Chunk list and header of a PNG; lengths are checked against the file, nothing is copied or inflated."""
    chunks: list[tuple[bytes, int, int]] = []
    ancillary = False
    pos = len(SIGNATURE)
    for _ in range(MAX_CHUNKS_WALKED):
        if pos + 8 > len(raw):
            break
        length, kind = struct.unpack(">I4s", raw[pos: pos + 8])
        start, end = pos + 8, pos + 8 + length
        if end + 4 > len(raw):
            if kind == b"IEND" or chunks and chunks[-1][0] == b"IEND":
                break
            shown = kind.decode("ascii") if kind.isalpha() else "?"
            raise CorruptFileError(path, f"not a readable image (PNG chunk '{shown}' runs past the end of the file)")
        ancillary = ancillary or kind not in _CRITICAL
        if kind in _CRITICAL or kind in _TEXT:
            chunks.append((kind, start, end))
            if len(chunks) > MAX_CHUNKS:
                raise CorruptFileError(path, f"not a readable image (more than {MAX_CHUNKS:,} PNG chunks)")
        pos = end + 4
        if kind == b"IEND":
            break
    else:
        raise CorruptFileError(path, f"not a readable image (more than {MAX_CHUNKS_WALKED:,} PNG chunks)")
    if not chunks or chunks[0][0] != b"IHDR" or chunks[0][2] - chunks[0][1] != 13:
        raise CorruptFileError(path, "not a readable image (PNG without a valid IHDR header)")
    width, height, depth, color = struct.unpack(">IIBB", raw[chunks[0][1]: chunks[0][1] + 10])
    return Png(width, height, depth, color, chunks, ancillary)


def text_value(raw: bytes, png: Png, key: str, limit: int, path: str) -> str | None:
    """The text stored under ``key`` (the first one), at most ``limit`` characters; None when absent."""
    wanted = key.encode("latin-1")
    for kind, start, end in png.chunks:
        if kind not in _TEXT:
            continue
        if not raw.startswith(wanted + b"\x00", start):
            continue
        if zlib.crc32(raw[start - 4: end]) != int.from_bytes(raw[end: end + 4], "big"):
            raise CorruptFileError(path, f"not a readable image (the {key} text chunk fails its checksum)")
        rest = raw[start + len(wanted) + 1: end]
        if kind == b"tEXt":
            return _capped(rest, limit, key, path).decode("latin-1")
        if kind == b"zTXt":
            return _inflate(rest[1:], limit, key, path).decode("latin-1")
        return _itxt(rest, limit, key, path)
    return None


def _itxt(rest: bytes, limit: int, key: str, path: str) -> str:
    if len(rest) < 2:
        raise CorruptFileError(path, f"the {key} text chunk is damaged")
    compressed = rest[0] == 1
    _language, _, rest = rest[2:].partition(b"\x00")
    _translated, _, text = rest.partition(b"\x00")
    payload = _inflate(text, limit, key, path) if compressed else _capped(text, limit, key, path)
    return payload.decode("utf-8", errors="replace")


def _capped(data: bytes, limit: int, key: str, path: str) -> bytes:
    if len(data) > limit:
        raise CorruptFileError(path, f"the {key} text chunk holds {len(data) / 2**20:.0f} MB; more than "
                                     f"{limit // 2**20} MB is not an embedding (refused)")
    return data


def _inflate(data: bytes, limit: int, key: str, path: str) -> bytes:
    """Inflate at most ``limit`` bytes: a small chunk that expands to gigabytes stops at the limit."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit)
    except zlib.error as e:
        raise CorruptFileError(path, f"the compressed {key} text chunk is damaged") from e
    if inflater.unconsumed_tail:
        raise CorruptFileError(path, f"the compressed {key} text chunk expands beyond {limit // 2**20} MB "
                                     "(refused)")
    return out


def pixels_only(raw: bytes, png: Png) -> bytes:
    """The picture with only the chunks needed to draw it (header, palette, transparency, pixels, end)."""
    parts = [SIGNATURE]
    for kind, start, end in png.chunks:
        if kind in _CRITICAL:
            parts.append(raw[start - 8: end + 4])
    return b"".join(parts)
