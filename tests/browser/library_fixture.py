"""A small library covering every kind of card the tab shows, written into a folder for the browser tests."""

from __future__ import annotations

import json
from pathlib import Path

from factories import sdxl_vectors, vectors, write_a1111_pt, write_image, write_safetensors

XSS = "<img src=x onerror=alert(1)>"


def build(folder: Path) -> Path:
    write_a1111_pt(folder / "cat.pt", vectors(3, seed=1))
    (folder / "cat.txt").write_text("a fluffy animal", encoding="utf-8")
    write_image(folder / "cat.preview.png", vectors(1, seed=9), "just a picture")  # a preview, not an embedding
    write_safetensors(folder / "EasyNegative.safetensors", {"emb_params": vectors(2, seed=2)})
    write_safetensors(folder / "styled.safetensors", {"emb_params": vectors(1, seed=3)})
    (folder / "styled.json").write_text(json.dumps({"description": "has a weight", "preferred weight": 1.2}))
    write_safetensors(folder / "negative" / "plain-thing.safetensors", {"emb_params": vectors(1, seed=4)})
    write_safetensors(folder / "sub" / f"{XSS}.safetensors", {"emb_params": vectors(1, seed=5)})
    write_safetensors(folder / "xl" / "big-xl.safetensors", sdxl_vectors(2, seed=6))
    write_image(folder / "pictures" / "img-embed.png", vectors(2, seed=7), "img-embed")
    (folder / "broken.pt").write_bytes(b"this is not a pickle at all")
    return folder
