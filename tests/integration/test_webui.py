"""Against a real WebUI (see conftest): API, TI hashes, hot pickup from sub-folders, the tab, the Lora tab."""

from __future__ import annotations

import re
import time

import pytest
from factories import vectors, write_safetensors
from forks import a1111_version, current

pytestmark = pytest.mark.webui


def test_api_lists_embeddings_with_families(webui):
    listing = webui.get("/sdapi/v1/embeddings")
    loaded, skipped = listing["loaded"], listing["skipped"]
    assert {"legacyemb", "zipemb", "negemb"} <= set(loaded)  # zipemb: torch zip format, refused by the WebUI itself
    assert loaded["negemb"]["family"] == "sd1" and loaded["negemb"]["vectors"] == 4
    assert loaded["negemb"]["shape"] == 768 and len(shorthash(webui, "negemb")) == 12
    assert skipped["xlemb"]["family"] == "sdxl" and "SDXL" in skipped["xlemb"]["reason"]
    own = webui.get("/sd-embeddings/v1/embeddings")
    evil = next(r for r in own["embeddings"] if r["keyword"] == "evil")
    assert evil["status"] == "unsafe" and "system" in evil["reason"]
    assert "evil" not in loaded and "evil" not in skipped
    assert "Textual inversion: 3 loaded, 1 incompatible (SDXL), 1 unsafe" in webui.log.read_text(errors="replace")
    assert webui.post("/sdapi/v1/refresh-embeddings") is None


def test_one_start_line_names_the_adapter(webui):
    lines = [line for line in webui.log.read_text(errors="replace").splitlines()
             if "Textual inversion (sd-embeddings): " in line and " adapter" in line]
    assert len(lines) == 1 and f"using the {current().adapter} adapter (" in lines[0], lines


def shorthash(webui, name: str) -> str:
    """The listing's ``shorthash`` of ``name``: present once the background pass (or a generation) hashed it."""
    deadline = time.monotonic() + 120  # a hang cap, not a speed bound
    while True:
        value = webui.get("/sdapi/v1/embeddings")["loaded"][name].get("shorthash")
        if value or time.monotonic() > deadline:
            return value or ""
        time.sleep(0.5)


def ti_hashes(infotext: str) -> str:
    match = re.search(r'TI hashes: "([^"]*)"', infotext) or re.search(r"TI hashes: ([^,]*)", infotext)
    return match.group(1) if match else ""


def test_negative_embedding_writes_ti_hashes_once_also_from_cache(webui):
    negemb = shorthash(webui, "negemb")
    first = webui.txt2img("a cat, zipemb", "negemb, blurry, negemb, (negemb:1.2)")
    zipemb = shorthash(webui, "zipemb")
    assert ti_hashes(first) == f"zipemb: {zipemb}, negemb: {negemb}"
    second = webui.txt2img("a cat, zipemb", "negemb, blurry, negemb, (negemb:1.2)")  # conditioning cache hit
    assert ti_hashes(second) == ti_hashes(first)


def test_params_txt_has_ti_hashes_once(webui):
    """The WebUI writes params.txt right after the conditioning, before the per-image infotext is built."""
    negemb = shorthash(webui, "negemb")
    params = webui.data / "params.txt"
    info = webui.txt2img("a cat, negemb, [negemb:dog:1]", "negemb, blurry")  # the WebUI repeats it per prompt
    assert ti_hashes(info) == f"negemb: {negemb}"
    if (a1111_version(info) or (1, 9)) < (1, 9):
        pytest.skip("A1111 1.7-1.8 write params.txt before the conditioning is computed (1.9.0 moved it after): "
                    "no TI hashes in it, stock or with this extension")
    assert ti_hashes(params.read_text(encoding="utf8")) == f"negemb: {negemb}"


def test_file_dropped_into_sub_folder_is_used_by_next_generation(webui):
    assert ti_hashes(webui.txt2img("a dog, freshemb")) == ""
    write_safetensors(webui.embeddings / "new" / "deeper" / "freshemb.safetensors", {"emb_params": vectors(1)})
    info = webui.txt2img("a dog, freshemb")
    fresh = shorthash(webui, "freshemb")
    assert ti_hashes(info) == f"freshemb: {fresh}"
    write_safetensors(webui.embeddings / "new" / "deeper" / "freshemb.safetensors", {"emb_params": vectors(2, seed=9)})
    info = webui.txt2img("a dog, freshemb")  # overwritten in place: same name, new hash, no Refresh
    changed = webui.get("/sdapi/v1/embeddings")["loaded"]["freshemb"]
    assert changed["vectors"] == 2 and ti_hashes(info) == f"freshemb: {shorthash(webui, 'freshemb')}"
    (webui.embeddings / "new" / "deeper" / "freshemb.safetensors").unlink()
    assert ti_hashes(webui.txt2img("a dog, freshemb")) == ""


SMALL_GENERATION = ("() => ['txt2img_width', 'txt2img_height', 'txt2img_steps'].map("
                    "id => document.querySelector(`#${id} input[type=number]`)?.value).join() === '64,64,1'")
"""The page's txt2img width, height and steps are what the generations here need (CPU)."""
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def page(webui):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        try:
            tab = browser.new_page()
            tab.goto(webui.url, timeout=120_000)
            tab.wait_for_selector("#txt2img_extra_tabs", state="attached", timeout=120_000)
            # Forge2 sets width, height (and Neo the steps) from its preset options in a load event after the page
            # is built: a click on Generate before it ran 1024x1024 at 20 steps on CPU, and Neo was killed
            tab.wait_for_function(SMALL_GENERATION, timeout=120_000)
            yield tab
        finally:
            browser.close()


@pytest.mark.browser
def test_tab_shows_cards_and_click_inserts_into_negative_prompt(page):
    page.click("#txt2img_extra_tabs > div > button:has-text('Textual Inversion')")
    card = page.locator("#txt2img_textual_inversion_cards .card[data-name='negemb']")
    card.wait_for(timeout=60_000)
    assert page.locator("#txt2img_textual_inversion_cards .card[data-name='xlemb']").count() == 1
    card.click()
    deadline = time.monotonic() + 10
    negative = page.locator("#txt2img_neg_prompt textarea")
    while "negemb" not in negative.input_value() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "negemb" in negative.input_value()
    assert "negemb" not in page.locator("#txt2img_prompt textarea").input_value()


@pytest.mark.browser
def test_builtin_lora_tab_still_works(page, webui):
    page.click("#txt2img_extra_tabs > div > button:has-text('Lora')")
    page.wait_for_selector("#txt2img_lora_cards_html", state="visible", timeout=60_000)
    assert page.locator("#txt2img_lora_extra_search").count() >= 1  # the WebUI's own markup (2 with or without us)
    assert isinstance(webui.get("/sdapi/v1/loras"), list)


@pytest.mark.browser
def test_near_miss_and_incompatible_keywords_are_warned_under_the_generation_info(page):
    page.locator("#txt2img_prompt textarea").fill("a cat, neg_emb, xlemb")
    page.click("#txt2img_generate")
    log = page.locator("#html_log_txt2img").first  # gradio 3 puts the id on the block and on the HTML inside
    deadline = time.monotonic() + 180
    while "Textual inversion:" not in log.inner_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    lines = [line for line in log.inner_text().splitlines() if line.startswith("Textual inversion:")]
    assert any("'neg_emb' stays plain text; did you mean the embedding 'negemb'" in line for line in lines), lines
    assert any("'xlemb' stays plain text" in line and "SDXL" in line for line in lines), lines
