"""The standalone page around the tab: Encode report, model-family switch, empty state."""

from __future__ import annotations

import pytest
from library_fixture import build
from page_actions import encode
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.browser

NEG = "#txt2img_neg_prompt textarea"
USABLE = ("name => { const c = document.querySelector(`#txt2img_textual_inversion_cards .card[data-name=\"${name}\"]`);"
          " return !!c && !c.classList.contains('sdemb-unusable'); }")


def card(page, name: str):
    return page.locator(f'#txt2img_textual_inversion_cards .card[data-name="{name}"]')


def choose_family(page, label: str, usable: str) -> None:
    """Pick ``label`` in the dropdown and wait until the card ``usable`` is drawn usable. A pick that did not take
    (seen once on a loaded machine, cause not pinned down; the page's load event setting the dropdown to the
    server's family after the pick would do it, and the page then agrees with the server on the old family) is
    made again, as a user would; three that do not take fail."""
    option = page.locator(f"[data-testid=dropdown-option][aria-label='{label}']")
    for attempt in range(3):
        page.click("#sdemb_family input")
        try:
            option.click(timeout=5_000)
            page.wait_for_function(USABLE, arg=usable, timeout=20_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")


def test_click_a_negative_then_encode_shows_it_used(shared_host, open_page):
    page, watch = open_page(shared_host(build))
    page.fill("#txt2img_prompt textarea", "a photo of a cat")
    card(page, "EasyNegative").click()
    assert page.input_value(NEG) == "EasyNegative"
    text = encode(page, watch)
    assert "Negative prompt: 2/75 tokens" in text
    assert "EasyNegative.safetensors" in text
    assert "TI hashes:" in text and "EasyNegative: " in text
    assert "[1, 77, 768]" in text
    assert watch.errors == []


def test_family_selector_changes_compatibility_live(shared_host, open_page):
    page, watch = open_page(shared_host(build))
    assert "sdemb-unusable" in card(page, "big-xl").get_attribute("class")
    choose_family(page, "SDXL", usable="big-xl")
    assert "sdemb-unusable" in card(page, "cat").get_attribute("class")
    assert "model is SDXL" in card(page, "cat").inner_text()
    assert watch.errors == []


def test_empty_folder_explains_what_to_do(tmp_path, host_factory, open_page):
    folder = tmp_path / "empty"
    folder.mkdir()
    page, _ = open_page(host_factory(folder))
    text = page.locator("#txt2img_textual_inversion_cards").inner_text()
    assert "No embeddings here yet" in text and "empty" in text and ".safetensors" in text
    assert str(tmp_path) not in text  # the folder's name, not the absolute path (SECURITY.md: page readers)


def test_family_shown_after_a_reload_is_the_servers_and_encode_uses_it(shared_host, open_page):
    page, watch = open_page(shared_host(build))
    choose_family(page, "SDXL", usable="big-xl")
    page.reload()
    page.wait_for_selector(".sdemb-pane[data-sdemb-init]", timeout=60_000)
    # the page asks the server for its family on load: a round trip that a loaded 2-core machine can make slow
    page.wait_for_function("() => document.querySelector('#sdemb_family input').value === 'SDXL'", timeout=60_000)
    # the pane gradio kept from the server's start is checked against the server at once (one round trip)
    page.wait_for_function(USABLE, arg="big-xl", timeout=20_000)
    assert "model is SDXL" in card(page, "cat").inner_text()
    page.fill("#txt2img_prompt textarea", "big-xl")
    text = encode(page, watch)
    assert "big-xl" in text and "2048" in text  # SDXL: 768 + 1280 per token
    choose_family(page, "SD1.5", usable="cat")
    assert "sdemb-unusable" in card(page, "big-xl").get_attribute("class")
    assert watch.errors == []
