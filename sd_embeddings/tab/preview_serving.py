"""Serving a preview picture: only bytes that really are a picture, with headers that keep them a picture.

A preview is chosen by name (``x.png``, ``x.preview.webp``), but its bytes can be anything: an SVG or an HTML page
saved as ``x.png``, or ``x.png`` a link to ``x.svg``. Served with the target's type, or sniffed by the browser,
such a file runs script on the host's origin. ``open_preview(path, within)`` opens the path once inside its
embeddings folder (``containment.Root.open``: no link out, no FIFO or device, a regular file only), and sniffs the
first bytes as PNG, JPEG, WebP, GIF or AVIF (``sniff``); ``preview_response`` streams exactly that open file with
the sniffed ``Content-Type``, ``X-Content-Type-Options: nosniff`` and
``Content-Security-Policy: default-src 'none'; sandbox``. Every refusal is a ``NotServable`` with a one-line
reason (the route answers 404).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi.responses import StreamingResponse

from ..library.containment import OutsideError, Root

CHUNK = 256 * 1024
HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
           "Cache-Control": "max-age=3600"}
AVIF_BRANDS = (b"avif", b"avis")


class NotServable(ValueError):
    """The file is not served; the message is a one-line reason safe to show."""


def sniff(head: bytes) -> str | None:
    """The picture type of a file starting with ``head`` (at least 32 bytes when the file has them), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        box = int.from_bytes(head[:4], "big")
        brands = [head[8:12]] + [head[i:i + 4] for i in range(16, min(box, len(head)) - 3, 4)]
        if any(brand in AVIF_BRANDS for brand in brands):
            return "image/avif"
    return None


@dataclass
class OpenPreview:
    fd: int
    size: int
    media_type: str


def open_preview(path: str, within: Root | None = None) -> OpenPreview:
    """Open a preview once (``within``: inside that embeddings folder, see ``containment.Root.open``; else the
    folder it sits in) and sniff its first bytes from that descriptor."""
    name = os.path.basename(path)
    try:
        fd = (within or Root.of(os.path.dirname(path))).open(path)
    except OutsideError as e:
        raise NotServable(f"{name}: {e.reason}") from e
    except OSError as e:
        raise NotServable(f"{name}: cannot be opened ({e.strerror or 'error'})") from e
    try:
        info = os.fstat(fd)
        kind = sniff(os.pread(fd, 64, 0))
        if kind is None:
            raise NotServable(f"{name}: not a PNG, JPEG, WebP, GIF or AVIF picture")
    except BaseException:
        os.close(fd)
        raise
    return OpenPreview(fd, info.st_size, kind)


def _chunks(opened: OpenPreview) -> Iterator[bytes]:
    """The file's bytes, from the descriptor that was sniffed, no more than the size it had when opened."""
    try:
        offset = 0
        while offset < opened.size:
            piece = os.pread(opened.fd, min(CHUNK, opened.size - offset), offset)
            if not piece:
                break
            offset += len(piece)
            yield piece
    finally:
        os.close(opened.fd)


def preview_response(path: str, within: Root | None = None) -> StreamingResponse:
    opened = open_preview(path, within)
    return StreamingResponse(_chunks(opened), media_type=opened.media_type, headers=HEADERS)
