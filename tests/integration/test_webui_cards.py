"""Groups and Civitai sidecars in the real WebUI's tab (gradio 3.41), in Chromium: a group file dropped into the
embeddings folder becomes a card after the tab's Refresh, one click puts each member into its own prompt box and
the next takes them out; a Civitai Helper ``x.civitai.info`` puts the base model on the card and in the dialog.
The files are real files written here and removed afterwards (the WebUI is shared by the session). Opt-in:
``WEBUI_DIR``."""

from __future__ import annotations

import json

import pytest
from test_webui import page  # noqa: F401  (the fixture: Chromium on the running WebUI)

T = "#txt2img_textual_inversion"
POS, NEG = "#txt2img_prompt textarea", "#txt2img_neg_prompt textarea"
GROUP = {"sd-embeddings group": 1, "description": "my usual negatives", "target": "auto",
         "members": [{"keyword": "negemb"}, {"keyword": "legacyemb", "weight": 0.8, "target": "positive"}]}
CIVITAI = {"id": 9208, "modelId": 7808, "name": "v1.0", "baseModel": "SD 1.5", "trainedWords": ["legacyemb"],
           "description": "<p>Trained on <b>old</b> photographs.</p>",
           "model": {"name": "Legacy Embedding", "type": "TextualInversion", "nsfw": False},
           "images": [{"url": "https://image.civitai.com/x/1.jpeg", "width": 512, "height": 768}]}


def open_tab_after_refresh(page):  # noqa: F811
    page.click("#txt2img_extra_tabs > div > button:has-text('Textual Inversion')")
    page.locator(f"{T}_cards .card[data-name='negemb']").wait_for(timeout=60_000)
    page.locator(".sdemb-refresh:visible").first.click()  # files written after the page was built


@pytest.mark.browser
def test_a_group_card_puts_each_member_into_its_box_and_takes_them_out(page, webui):  # noqa: F811
    group_file = webui.embeddings / "Live negatives.tigroup.json"
    group_file.write_text(json.dumps(GROUP), encoding="utf-8")
    try:
        open_tab_after_refresh(page)
        card = page.locator(f"{T}_cards .sdemb-group").filter(has=page.locator(".name", has_text="Live negatives"))
        card.wait_for(timeout=60_000)
        assert card.locator(".sdemb-members").inner_text() == "negemb, (legacyemb:0.8)"
        page.locator(POS).fill("a lighthouse")
        card.click()
        positive, negative = page.input_value(POS), page.input_value(NEG)
        assert positive.startswith("a lighthouse") and positive.endswith("(legacyemb:0.8)"), positive
        assert negative == "negemb" and "negemb" not in positive  # negemb is in negative/: auto sends it there
        card.click()
        assert page.input_value(POS) == "a lighthouse" and page.input_value(NEG) == ""
    finally:
        group_file.unlink()


@pytest.mark.browser
def test_civitai_base_model_shows_on_the_card_and_in_the_dialog(page, webui):  # noqa: F811
    sidecar = webui.embeddings / "legacyemb.civitai.info"
    sidecar.write_text(json.dumps(CIVITAI), encoding="utf-8")
    try:
        open_tab_after_refresh(page)
        badge = page.locator(f"{T}_cards .card[data-name='legacyemb'] .sdemb-base")
        badge.wait_for(timeout=60_000)
        assert badge.inner_text() == "SD 1.5"
        card = page.locator(f"{T}_cards .card[data-name='legacyemb']")
        assert card.locator(".description").inner_text() == "Trained on old photographs."
        assert page.locator(f"{T}_cards .card[data-name='negemb'] .sdemb-base").count() == 0
        card.hover()
        card.locator(".sdemb-edit").click()
        dialog = page.locator("dialog.sdemb-dialog")
        dialog.locator(".sdemb-civitai").wait_for(timeout=60_000)
        civitai = dialog.locator(".sdemb-civitai").inner_text()
        assert "SD 1.5" in civitai and "Legacy Embedding" in civitai and "legacyemb.civitai.info" in civitai
    finally:
        sidecar.unlink()
