"""The README's pictures of Civitai sidecars and of ``embedding:name`` with common words, in Chromium on the
standalone host over a realistic library (public embedding names, random vectors, previews drawn at test time).
Each checks what it shows; the picture goes to test-artifacts/ and, with ``SDEMB_SCREENSHOTS=docs``, to
docs/screenshots/ (look at it before committing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from factories import vectors, write_safetensors
from page_actions import encode
from realistic_library import build_civitai, build_realistic

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CARDS = "#txt2img_textual_inversion_cards"


def save(page, name: str, **options) -> None:
    targets = [ROOT / "test-artifacts"] + ([ROOT / "docs" / "screenshots"]
                                           if os.environ.get("SDEMB_SCREENSHOTS") == "docs" else [])
    for folder in targets:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / name), **options)


def previews_loaded(page) -> None:
    page.wait_for_function("() => [...document.querySelectorAll('img.sdemb-preview')].every(i => i.complete)")


def test_civitai_base_models_on_the_cards(tmp_path, host_factory, open_page):
    """An SDXL model: the badge says which SDXL (SDXL 1.0, Pony, Illustrious) where the vectors cannot; the SD 1.5
    card is greyed for the model; Browser+'s first saved image is a preview; descriptions come from Civitai."""
    host = host_factory(build_civitai(tmp_path / "embeddings"), family="sdxl")
    page, watch = open_page(host)
    badges = {name: page.locator(f'{CARDS} .card[data-name="{name}"] .sdemb-base').inner_text()
              for name in ("EasyNegative", "negativeXL_D", "zPDXL3", "lazyneg", "kodak-portra-400")}
    assert badges == {"EasyNegative": "SD 1.5", "negativeXL_D": "SDXL 1.0", "zPDXL3": "Pony",
                      "lazyneg": "Illustrious", "kodak-portra-400": "SDXL 1.0"}
    easy = page.locator(f'{CARDS} .card[data-name="EasyNegative"]')
    assert "sdemb-unusable" in easy.get_attribute("class")
    assert easy.locator(".description").inner_text() == "A negative embedding for anime models."
    film = page.locator(f'{CARDS} .card[data-name="kodak-portra-400"]')
    assert "kodak-portra-400_0.jpg" in film.locator("img.preview").get_attribute("src")
    previews_loaded(page)
    pane = page.locator("#txt2img_textual_inversion_cards").bounding_box()
    tree = page.locator("#txt2img_textual_inversion_tree").bounding_box()
    save(page, "civitai.png", clip={"x": tree["x"] - 8, "y": pane["y"] - 8, "width": pane["x"] + pane["width"] -
                                    tree["x"] + 16, "height": pane["height"] + 16})
    assert watch.errors == []


def test_embedding_name_and_common_word_warnings(tmp_path, host_factory, open_page):
    """``embedding:name`` (weighted, with a folder) is used; a common word that is an embedding's keyword is used
    too, carries a badge on its card and is named under the prompt."""
    folder = build_realistic(tmp_path / "embeddings")
    write_safetensors(folder / "styles" / "photo.safetensors", {"emb_params": vectors(2, seed=30)})
    host = host_factory(folder)
    page, watch = open_page(host)
    page.fill("#txt2img_prompt textarea", "a photo of a lighthouse at dusk, (embedding:wtrcolor-style:0.8)")
    page.fill("#txt2img_neg_prompt textarea", "embedding:EasyNegative, (embedding:negative/bad-hands-5:1.2)")
    text = encode(page, watch)
    for used in ("styles/watercolor/wtrcolor-style.pt", "negative/EasyNegative.safetensors",
                 "negative/bad-hands-5.pt", "styles/photo.safetensors"):
        assert used in text, used
    assert "'photo' is a common English word" in text
    word = page.locator(f'{CARDS} .card[data-name="photo"] .sdemb-common')
    assert word.inner_text() == "word"
    page.locator('#txt2img_textual_inversion_tree .sdemb-folder-btn[data-folder="styles"]').click()
    previews_loaded(page)
    save(page, "explicit.png", full_page=True)
    assert watch.errors == []
