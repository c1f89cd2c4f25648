"""A library that looks like a real user's (for the README screenshots): well-known negatives, an SDXL negative,
style embeddings in sub-folders, previews and descriptions. The names are the public ones; the vectors are random
and the previews are drawn here (gradients and shapes), so nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors
from PIL import Image, ImageDraw, ImageFilter

# (relative path without extension, format, vectors, description, preview colours or None)
LIBRARY = (
    ("negative/EasyNegative", "safetensors", 8, "General negative for anime-style models",
     ((40, 44, 60), (120, 90, 140))),
    ("negative/bad-hands-5", "pt", 2, "Fewer malformed hands", ((70, 50, 45), (200, 150, 120))),
    ("negative/negative_hand-neg", "pt", 2, "", None),
    ("negative/FastNegativeV2", "pt", 8, "Light all-round negative", ((30, 60, 70), (90, 170, 160))),
    ("negative/BadDream", "pt", 8, "Pairs with DreamShaper", None),
    ("negative/sdxl/negativeXL_D", "xl", 4, "SDXL negative", ((60, 30, 50), (170, 80, 120))),
    ("styles/watercolor/wtrcolor-style", "pt", 4, "Soft watercolor washes", ((120, 170, 210), (245, 225, 200))),
    ("styles/ink/ink-sketch", "safetensors", 3, "Pen and ink line art", ((235, 232, 225), (60, 60, 70))),
    ("styles/film/kodak-portra-400", "safetensors", 6, "Warm film colours", ((230, 150, 90), (90, 60, 110))),
    ("styles/film/cinestill-800t", "safetensors", 6, "", None),
    ("characters/old-sailor", "pt", 10, "A weathered sea captain", ((40, 80, 120), (210, 190, 150))),
)


def preview(path: Path, top: tuple[int, int, int], bottom: tuple[int, int, int], seed: int) -> None:
    """A soft two-colour picture with a few blurred shapes, 300 x 400 like the WebUI's previews."""
    width, height = 300, 400
    picture = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(picture)
    for y in range(height):
        t = y / (height - 1)
        draw.line([(0, y), (width, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom)))
    for i in range(5):
        x, y, r = (seed * 53 + i * 97) % width, (seed * 31 + i * 71) % height, 30 + (seed + i * 13) % 60
        shade = tuple(min(255, c + 40) for c in (bottom if i % 2 else top))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=shade)
    picture.filter(ImageFilter.GaussianBlur(6)).save(path)


def build_realistic(root: Path) -> Path:
    for seed, (stem, kind, count, description, colours) in enumerate(LIBRARY):
        base = root / stem
        if kind == "xl":
            write_safetensors(base.with_suffix(".safetensors"), sdxl_vectors(count, seed=seed))
        elif kind == "pt":
            base.parent.mkdir(parents=True, exist_ok=True)
            write_a1111_pt(base.with_suffix(".pt"), vectors(count, seed=seed))
        else:
            write_safetensors(base.with_suffix(".safetensors"), {"emb_params": vectors(count, seed=seed)})
        if description:
            base.with_suffix(".json").write_text(json.dumps({"description": description}), encoding="utf-8")
        if colours:
            preview(base.parent / f"{base.name}.preview.png", *colours, seed)
    (root / "half-downloaded.pt").write_bytes(b"PK\x03\x04" + b"\0" * 60)
    return root


# (relative path without extension, vectors (SDXL when a tuple), Civitai base model, Civitai description, preview)
CIVITAI = (
    ("negative/EasyNegative", 8, "SD 1.5", "<p>A negative embedding for <b>anime</b> models.</p>",
     ((40, 44, 60), (120, 90, 140))),
    ("negative/negativeXL_D", (4,), "SDXL 1.0", "<p>Negative for SDXL base and its fine-tunes.</p>",
     ((60, 30, 50), (170, 80, 120))),
    ("negative/zPDXL3", (1,), "Pony", "<p>Quality negative for <i>Pony Diffusion V6 XL</i>.</p>", None),
    ("negative/lazyneg", (2,), "Illustrious", "<p>Negative for Illustrious-XL and NoobAI.</p>",
     ((70, 60, 90), (200, 170, 150))),
)


def build_civitai(root: Path) -> Path:
    """Embeddings as Civitai Helper leaves them (``x.civitai.info``: the by-hash answer for a model version), and
    one as Civitai Browser+ leaves it (Civitai keys merged into ``x.json``, ``x.api_info.json``, ``x_0.jpg``)."""
    for seed, (stem, count, base, description, colours) in enumerate(CIVITAI):
        base_path = root / stem
        tensors = sdxl_vectors(count[0], seed=seed) if isinstance(count, tuple) else {"emb_params": vectors(count)}
        write_safetensors(base_path.with_suffix(".safetensors"), tensors)
        name = base_path.name
        (base_path.parent / f"{name}.civitai.info").write_text(json.dumps({
            "id": 1000 + seed, "modelId": 500 + seed, "name": "v1.0", "baseModel": base, "trainedWords": [name],
            "description": description, "model": {"name": name, "type": "TextualInversion", "nsfw": False},
            "images": [{"url": f"https://image.civitai.com/{name}/1.jpeg", "width": 512, "height": 768}]}),
            encoding="utf-8")
        if colours:
            preview(base_path.parent / f"{name}.preview.png", *colours, seed)
    film = root / "styles" / "film" / "kodak-portra-400"
    write_safetensors(film.with_suffix(".safetensors"), sdxl_vectors(6, seed=9))
    film.with_suffix(".json").write_text(json.dumps({
        "activation text": "kodak-portra-400", "sd version": "SDXL", "description": "Warm film colours",
        "modelId": 601, "modelVersionId": 701}), encoding="utf-8")
    version = {"id": 701, "name": "XL", "baseModel": "SDXL 1.0", "files": [{"name": "kodak-portra-400.safetensors"}]}
    (film.parent / "kodak-portra-400.api_info.json").write_text(json.dumps({
        "id": 601, "name": "Kodak Portra 400", "modelVersions": [version]}), encoding="utf-8")
    preview(film.parent / "kodak-portra-400_0.jpg", (230, 150, 90), (90, 60, 110), 9)
    return root
