"""Replacing an embedding's preview with an uploaded picture (the tab's "Replace preview").

``reencode(data) -> bytes``: the uploaded bytes decoded by Pillow (only ``FORMATS``, at most ``MAX_PIXELS``
declared pixels, checked before decoding) and written again as a fresh PNG no larger than ``MAX_SIDE`` on either
side; the uploaded bytes themselves are never stored. ``preview_target(entry, shown=False) -> str``: ``x.preview.png``
beside the entry (with ``shown``: the plain ``x.png`` that takes precedence over it, ``shadowing_preview``),
refused when that folder resolves outside the embeddings folder or the name is taken by something that is not a
plain file (the route then writes it with ``Library.save_preview``, the library's one atomic
writer). Every refusal is a ``PreviewError``.

Memory: a decoded picture takes up to 4 bytes per pixel, the conversion to RGB(A) another 4 and the PNG written
back up to 4 more (noise does not compress), so ``MAX_PIXELS`` is the memory budget (``MEMORY_BUDGET``) over
``PEAK_BYTES_PER_PIXEL``, checked on the header's dimensions before any pixel is decoded. ``upload_slot()`` lets
one upload be decoded at a time (another one meanwhile gets ``UploadBusy``), and every decoded buffer is dropped
before the PNG is written back, so the memory returns after each request.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import warnings
from collections.abc import Iterator

from ..records import Entry

logger = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 4096
MEMORY_BUDGET = 150 * 1024 * 1024
PEAK_BYTES_PER_PIXEL = 12
MAX_PIXELS = MEMORY_BUDGET // PEAK_BYTES_PER_PIXEL
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")


class PreviewError(ValueError):
    """An upload that cannot become a preview; the message is safe to show."""


class UploadBusy(PreviewError):
    """Another upload is being decoded; the client may try again."""


_slot = threading.BoundedSemaphore(1)


@contextlib.contextmanager
def upload_slot() -> Iterator[None]:
    """Hold the one decoding slot for the block, or raise ``UploadBusy`` at once when it is taken."""
    if not _slot.acquire(blocking=False):
        raise UploadBusy("another preview upload is being processed; try again in a moment")
    try:
        yield
    finally:
        _slot.release()


def reencode(data: bytes) -> bytes:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise PreviewError(f"picture too large ({image.width}x{image.height} pixels; at most "
                                       f"{MAX_PIXELS:,} pixels)")
                image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale
                image.load()
                alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
                picture = image.convert("RGBA" if alpha else "RGB")
    except PreviewError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise PreviewError("picture too large (declares too many pixels)") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise PreviewError("not a picture Pillow can read (PNG, JPEG, WebP, GIF or BMP)") from e
    picture.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def shadowing_preview(entry: Entry) -> str | None:
    """The picture shown instead of an uploaded ``x.preview.png``: a plain ``x.png`` beside the file (pictures are
    looked for as ``x.png``, ``x.preview.png``, ``x.jpg`` ...), never the entry's own file (an image embedding)."""
    name = entry.sidecars.preview
    stem = os.path.splitext(entry.filename)[0]
    if name and name != entry.filename and name.lower() == f"{stem.lower()}.png":
        return name
    return None


def preview_target(entry: Entry, shown: bool = False) -> str:
    """Where an upload goes: ``x.preview.png``, or with ``shown`` the ``x.png`` that shadows it."""
    folder = os.path.dirname(entry.path)
    real_root, real_folder = os.path.realpath(entry.root), os.path.realpath(folder)
    if os.path.commonpath([real_root, real_folder]) != real_root:
        raise PreviewError("the embedding's folder is outside the embeddings folder")
    target = os.path.splitext(entry.path)[0] + ".preview.png"
    if shown:
        name = shadowing_preview(entry)
        if name is None:
            raise PreviewError("no picture takes precedence over the uploaded preview; nothing to replace")
        target = os.path.join(folder, name)
    if os.path.lexists(target) and not (os.path.islink(target) or os.path.isfile(target)):
        raise PreviewError(f"{os.path.basename(target)} exists and is not a file")
    return target
