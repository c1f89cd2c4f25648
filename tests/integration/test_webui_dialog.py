"""The card dialog inside the real WebUI (gradio 3.41), in Chromium: the inspector's nearest tokens come from the
loaded model's own token table, and "Use the selected image" takes the image the WebUI just generated from its
result gallery and writes it, re-encoded, as the card's ``x.preview.png``. Opt-in: ``WEBUI_DIR``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from factories import vectors, write_safetensors
from PIL import Image
from test_webui import page  # noqa: F401  (the fixture: Chromium on the running WebUI)

T = "#txt2img_textual_inversion"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.mark.browser
def test_dialog_inspects_and_takes_the_generated_image(page, webui):  # noqa: F811
    page.locator("#txt2img_prompt textarea").fill("a lighthouse")
    page.click("#txt2img_generate")
    page.locator("#txt2img_gallery img").first.wait_for(timeout=300_000)
    page.click("#txt2img_extra_tabs > div > button:has-text('Textual Inversion')")
    card = page.locator(f"{T}_cards .card[data-name='negemb']")
    card.wait_for(timeout=60_000)
    card.hover()
    card.locator(".sdemb-edit").click()
    dialog = page.locator("dialog.sdemb-dialog")
    rows = dialog.locator(".sdemb-tokens tr")
    rows.first.wait_for(timeout=120_000)  # the model's own 49,408 x 768 table (random weights here: any tokens)
    assert rows.count() == 4 and "the WebUI's model" in dialog.locator(".sdemb-nearest").inner_text()
    assert dialog.locator(".sdemb-chart rect").count() == 4
    dialog.locator(".sdemb-use-gallery").click()
    status = dialog.locator(".sdemb-preview-status")
    deadline = time.monotonic() + 60
    while "Saved as" not in status.inner_text() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert "negemb.preview.png" in status.inner_text(), status.inner_text()
    with Image.open(webui.embeddings / "negative" / "negemb.preview.png") as written:
        assert written.format == "PNG" and written.size == (64, 64)
    assert card.locator("img.preview").count() == 1
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    page.screenshot(path=str(artifacts / "webui-dialog.png"), full_page=True)


@pytest.mark.browser
def test_readme_picture_of_use_the_selected_image(page, webui):  # noqa: F811
    """The README's picture: an EasyNegative card (a file written here, removed after) takes the image just
    generated. Random model weights: the picture is what such a model draws. Written to test-artifacts/ and, with
    ``SDEMB_SCREENSHOTS=docs``, to docs/screenshots/use-selected-image.png."""
    written = [webui.embeddings / "EasyNegative.safetensors", webui.embeddings / "EasyNegative.preview.png"]
    write_safetensors(written[0], {"emb_params": vectors(8, seed=40)})
    try:
        page.locator("#txt2img_prompt textarea").fill("a lighthouse at dusk")
        page.locator("#txt2img_neg_prompt textarea").fill("EasyNegative")
        page.click("#txt2img_generate")
        page.locator("#txt2img_gallery img").first.wait_for(timeout=300_000)
        page.click("#txt2img_extra_tabs > div > button:has-text('Textual Inversion')")
        page.locator(".sdemb-refresh:visible").first.click()
        card = page.locator(f"{T}_cards .card[data-name='EasyNegative']")
        card.wait_for(timeout=60_000)
        card.hover()
        card.locator(".sdemb-edit").click()
        dialog = page.locator("dialog.sdemb-dialog")
        dialog.locator(".sdemb-use-gallery").click()
        status = dialog.locator(".sdemb-preview-status")
        deadline = time.monotonic() + 60
        while "Saved as" not in status.inner_text() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert "EasyNegative.preview.png" in status.inner_text(), status.inner_text()
        assert written[1].is_file()
        targets = [ARTIFACTS] + ([ARTIFACTS.parent / "docs" / "screenshots"]
                                 if os.environ.get("SDEMB_SCREENSHOTS") == "docs" else [])
        for folder in targets:
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / "use-selected-image.png"))
    finally:
        for path in written:
            path.unlink(missing_ok=True)
