"""The Textual Inversion tab in Chromium: insertion, negatives, toggling, search, filters, refresh, escaping."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from factories import vectors, write_safetensors
from library_fixture import XSS, build

from sd_embeddings.tab import shell

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
POS = "#txt2img_prompt textarea"
NEG = "#txt2img_neg_prompt textarea"


@pytest.fixture
def tab(shared_host, open_page):
    """A fresh page on a host over ``build``'s library, shared while no test changes it (``host_pool.py``)."""
    host = shared_host(build)
    page, watch = open_page(host)
    yield page, host
    assert watch.errors == [], watch.errors
    assert watch.dialogs == [], watch.dialogs


def card(page, name: str):
    return page.locator(f'#txt2img_textual_inversion_cards .card[data-name="{name}"]')


def values(page) -> tuple[str, str]:
    return page.input_value(POS), page.input_value(NEG)


def test_click_inserts_into_the_focused_box(tab):
    page, _ = tab
    page.evaluate("""() => { window.inputs = 0;
        document.querySelector('#txt2img_neg_prompt textarea').addEventListener('input', () => window.inputs++); }""")
    page.click(NEG)
    card(page, "cat").click()
    assert values(page) == ("", "cat")
    assert page.evaluate("window.inputs") == 1  # gradio sees the new value
    page.click(POS)
    card(page, "cat").click()
    assert values(page) == ("cat", "cat")


def test_negative_card_goes_to_the_negative_box_while_positive_is_focused(tab):
    page, _ = tab
    page.fill(POS, "a photo of a dog")
    page.click(POS)
    card(page, "EasyNegative").click()
    card(page, "plain-thing").click()  # negative by folder
    assert values(page) == ("a photo of a dog", "EasyNegative plain-thing")


def test_modifier_click_sends_to_the_other_box(tab):
    page, _ = tab
    card(page, "EasyNegative").click(modifiers=["Shift"])
    card(page, "cat").click(modifiers=["Alt"])
    assert values(page) == ("EasyNegative", "cat")


def test_second_click_removes_whole_words_only(tab):
    page, _ = tab
    page.fill(POS, "concatenate, (cat:1.3), catalogue")
    card(page, "cat").click()
    assert values(page)[0] == "concatenate, catalogue"
    card(page, "cat").click()
    assert values(page)[0] == "concatenate, catalogue cat"
    card(page, "cat").click()
    assert values(page)[0] == "concatenate, catalogue"


def test_insert_at_the_caret_with_the_webui_separator(tab):
    page, _ = tab
    page.evaluate("() => { window.opts = {extra_networks_add_text_separator: ', '}; }")
    page.fill(POS, "first last")
    page.evaluate("() => document.querySelector('#txt2img_prompt textarea').setSelectionRange(5, 5)")
    card(page, "cat").click()
    assert values(page)[0] == "first, cat, last"


def test_weighted_insert_and_removal(tab):
    page, _ = tab
    card(page, "styled").click()
    assert values(page)[0] == "(styled:1.2)"
    card(page, "styled").click()
    assert values(page)[0] == ""


def test_enter_on_a_focused_card_inserts(tab):
    page, _ = tab
    card(page, "cat").focus()
    page.keyboard.press("Enter")
    assert values(page)[0] == "cat"


def test_search_by_description_and_folder_and_family_filter(tab):
    page, _ = tab
    cards = page.locator("#txt2img_textual_inversion_cards .card")
    page.fill("#txt2img_textual_inversion_extra_search", "fluffy")
    assert cards.evaluate_all("els => els.map(e => e.dataset.name)") == ["cat"]
    page.fill("#txt2img_textual_inversion_extra_search", "negative/")
    assert cards.evaluate_all("els => els.map(e => e.dataset.name)") == ["plain-thing"]
    page.fill("#txt2img_textual_inversion_extra_search", "")
    page.select_option("#txt2img_textual_inversion_extra_family", "SDXL")
    assert cards.evaluate_all("els => els.map(e => e.dataset.name)") == ["big-xl"]
    assert "sdemb-unusable" in card(page, "big-xl").get_attribute("class")
    assert "model is SD1.5" in card(page, "big-xl").inner_text()
    page.select_option("#txt2img_textual_inversion_extra_family", "usable")
    names = cards.evaluate_all("els => els.map(e => e.dataset.name)")
    assert "big-xl" not in names and "cat" in names


def test_sort_by_vectors_descending(tab):
    page, _ = tab
    page.select_option("#txt2img_textual_inversion_extra_sort", "vectors")
    page.click("#txt2img_textual_inversion_extra_sort_dir")
    first = page.locator("#txt2img_textual_inversion_cards .card").first
    assert first.get_attribute("data-name") == "cat"  # 3 vectors, the most


def test_refresh_picks_up_a_new_file_in_a_sub_folder_and_keeps_the_search(tab):
    page, host = tab
    page.fill("#txt2img_textual_inversion_extra_search", "fresh")
    write_safetensors(host.folder / "deep" / "er" / "fresh-one.safetensors", {"emb_params": vectors(4, seed=8)})
    page.click("#txt2img_textual_inversion_extra_refresh")
    card(page, "fresh-one").wait_for(timeout=10_000)
    assert page.input_value("#txt2img_textual_inversion_extra_search") == "fresh"
    assert "4v" in card(page, "fresh-one").inner_text()


def test_new_files_show_up_by_themselves(tab):
    page, host = tab
    write_safetensors(host.folder / "later.safetensors", {"emb_params": vectors(1, seed=10)})
    card(page, "later").wait_for(timeout=15_000)


def test_hostile_name_renders_as_text_and_runs_nothing(tab):
    page, _ = tab
    hostile = card(page, XSS)
    assert hostile.locator(".name").inner_text() == XSS
    assert page.locator("#txt2img_textual_inversion_pane img[src='x']").count() == 0
    hostile.click()
    assert values(page)[0] == r"<img src=x onerror=alert\(1\)>"  # brackets escaped for the prompt parser
    time.sleep(0.5)  # the fixture asserts that no dialog opened and no script error happened


def test_problems_list_names_the_broken_file(tab):
    page, _ = tab
    summary = page.locator("#txt2img_textual_inversion_problems summary")
    assert "1 file(s) could not be used" in summary.inner_text()
    summary.click()
    assert "broken.pt" in page.locator("#txt2img_textual_inversion_problems").inner_text()


def test_metadata_dialog_stores_target_and_weight(tab):
    page, host = tab
    card(page, "cat").hover()
    card(page, "cat").locator(".sdemb-edit").click()
    dialog = page.locator("dialog.sdemb-dialog")
    dialog.locator("select[name=target]").select_option("negative")
    dialog.locator("input[name=weight]").fill("0.8")
    dialog.locator("textarea[name=notes]").fill("use sparingly")
    dialog.locator(".sdemb-save").click()
    page.wait_for_function("() => !document.querySelector('dialog.sdemb-dialog')")
    page.locator('.card[data-name="cat"] .sdemb-neg').wait_for()
    saved = json.loads((host.folder / "cat.json").read_text(encoding="utf-8"))
    assert saved["target"] == "negative" and saved["preferred weight"] == 0.8 and saved["notes"] == "use sparingly"
    assert saved["description"] == "a fluffy animal"
    page.click(POS)
    card(page, "cat").click()
    assert values(page) == ("", "(cat:0.8)")


def test_preview_route_serves_previews_and_refuses_traversal(tab, tmp_path):
    page, host = tab
    assert host.api("/preview?root=0&path=cat.preview.png")[0] == 200
    assert card(page, "cat").locator("img.preview").evaluate("img => img.complete && img.naturalWidth > 0")
    outside = tmp_path / "secret.png"
    shutil.copy(host.folder / "cat.preview.png", outside)
    write_safetensors(host.folder / "linked.safetensors", {"emb_params": vectors(1)})
    (host.folder / "linked.preview.png").symlink_to(outside)
    host.api("/refresh", b"{}")
    for path in ("../secret.png", "..%2Fsecret.png", "%2e%2e/secret.png", "%252e%252e/secret.png",
                 str(outside), "sub/../../secret.png", "linked.preview.png", "cat.pt", "cat.txt", "..\\secret.png"):
        status, _ = host.api(f"/preview?root=0&path={path}")
        assert status == 404, path


CONTRAST = """el => {
  const rgba = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const back = (node) => {
    for (; node; node = node.parentElement) {
      const c = rgba(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || c[3] > 0.5) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bg = back(el), fg = rgba(getComputedStyle(el).color), alpha = Number(getComputedStyle(el).opacity);
  const mixed = fg.slice(0, 3).map((c, i) => c * alpha + bg[i] * (1 - alpha));
  const lum = (c) => {
    const l = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
  };
  const [a, b] = [lum(mixed), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


def test_screenshots_light_and_dark(tmp_path, host_factory, open_page):
    """The README pictures, from a realistic library. They go to test-artifacts/; with SDEMB_SCREENSHOTS=docs also
    to docs/screenshots/ (look at them before committing). The folder chevrons must stand out (contrast >= 3)."""
    from realistic_library import build_realistic

    host = host_factory(build_realistic(tmp_path / "embeddings"))
    out_dirs = [ROOT / "test-artifacts"] + ([ROOT / "docs" / "screenshots"]
                                            if os.environ.get("SDEMB_SCREENSHOTS") == "docs" else [])
    for dark in (False, True):
        page, watch = open_page(host, dark=dark)
        page.fill(POS, "a watercolor painting of a lighthouse at dusk, wtrcolor-style")
        page.fill(NEG, "EasyNegative, bad-hands-5")
        page.locator("#txt2img_textual_inversion_problems summary").click()
        page.locator('.card[data-name="kodak-portra-400"]').hover()
        chevrons = page.locator(".sdemb-chevron")
        assert chevrons.count() == 2  # negative/, styles/
        assert chevrons.first.evaluate(CONTRAST) >= 3, "folder chevron too faint"
        page.wait_for_function("() => [...document.querySelectorAll('img.sdemb-preview')].every(i => i.complete)")
        name = "tab-dark.png" if dark else "tab-light.png"
        for out in out_dirs:
            out.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out / name), full_page=True)
        assert watch.errors == []


def test_loading_the_script_twice_changes_nothing(tab):
    page, _ = tab
    for name in shell.SCRIPTS:
        page.add_script_tag(path=str(ROOT / name))
    card(page, "cat").click()
    assert values(page)[0] == "cat"


def test_metadata_dialog_replaces_the_preview(tab, tmp_path):
    from PIL import Image

    page, host = tab
    upload = tmp_path / "new-look.jpg"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(upload, format="JPEG")
    assert card(page, "styled").locator("img.preview").count() == 0  # a placeholder letter so far
    card(page, "styled").hover()
    card(page, "styled").locator(".sdemb-edit").click()
    dialog = page.locator("dialog.sdemb-dialog")
    dialog.locator("input[name=preview]").set_input_files(str(upload))
    dialog.locator(".sdemb-save").click()
    picture = card(page, "styled").locator("img.preview")
    picture.wait_for(timeout=10_000)
    page.wait_for_function("""() => { const i = document.querySelector('.card[data-name="styled"] img.preview');
        return i && i.complete && i.naturalWidth === 40; }""", timeout=10_000)
    with Image.open(host.folder / "styled.preview.png") as written:
        assert written.format == "PNG" and written.size == (40, 30)
