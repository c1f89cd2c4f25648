"""Only PNG/WebP (and AVIF/JXL through their plugins) are opened from the embeddings folder: a TIFF or an EPS
renamed to .png is never handed to Pillow's reader for it (EPS runs Ghostscript; TIFF/FITS headers allocate what
they declare). Real files written at test time with Pillow."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from sd_embeddings.errors import EmbeddingError
from sd_embeddings.formats import decoding, image_format


def picture(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(out, kind)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["TIFF", "BMP", "GIF", "PPM", "ICO"])
def test_other_picture_formats_renamed_png_are_not_decoded(tmp_path, kind, monkeypatch):
    opened = []
    real_open = Image.open

    def spy(fp, mode="r", formats=None):
        opened.append(formats)
        return real_open(fp, mode, formats)

    monkeypatch.setattr(image_format.Image, "open", spy)
    path = tmp_path / "card.png"
    path.write_bytes(picture(kind))
    with pytest.raises(EmbeddingError) as caught:
        decoding.decode_file(path)
    assert "not a readable image" in caught.value.reason
    assert opened and all(set(f or ["any"]) <= set(image_format.EMBEDDING_IMAGE_FORMATS) for f in opened)


def test_png_and_webp_still_open(tmp_path):
    for kind in ("PNG", "WEBP"):
        image = image_format.open_image(picture(kind), str(tmp_path / f"x.{kind.lower()}"))
        assert image.format == kind
