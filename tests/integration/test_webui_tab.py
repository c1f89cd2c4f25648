"""The tab inside the real WebUI (gradio 3.41), in Chromium: opening it shows the cards, the folder tree and the
"N of M" count with no other click, drawn by the script from the document inline in the page (the WebUI sets the
page's HTML after our script has started, which used to leave the tree and count empty). Opt-in: ``WEBUI_DIR``."""

from __future__ import annotations

import json

import pytest
from test_webui import page  # noqa: F401  (the fixture: Chromium on the running WebUI)

T = "#txt2img_textual_inversion"


COUNT = "document.querySelectorAll('[id=txt2img_textual_inversion_controls]')"


@pytest.mark.browser
def test_opening_the_tab_shows_tree_and_count(page):  # noqa: F811
    """The WebUI moves the controls into its tab bar; after its re-render there is still one set, and it works."""
    page.click("#txt2img_extra_tabs > div > button:has-text('Textual Inversion')")
    page.locator(f"{T}_cards .card").first.wait_for(timeout=60_000)
    page.wait_for_function(f"() => {COUNT}.length === 1 && /^\\d+ of \\d+$/.test({COUNT}[0]"
                           ".querySelector('.sdemb-count').textContent)", timeout=10_000)
    folders = page.locator(f"{T}_tree .sdemb-folder-btn").evaluate_all("els => els.map(e => e.dataset.folder)")
    assert {"", "negative", "styles", "xl"} <= set(folders)
    doc = json.loads(page.locator(f"{T}_pane script.sdemb-doc").text_content())
    shown, total = page.locator(f"{T}_controls .sdemb-count").inner_text().split(" of ")
    assert int(total) == len(doc["cards"]) == page.locator(f"{T}_cards .card").count() and shown == total
    page.fill(f"{T}_extra_search", "negemb")
    page.wait_for_function(f"() => {COUNT}[0].querySelector('.sdemb-count').textContent === '1 of {total}'")
