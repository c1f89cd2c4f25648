"""Groups and ``--explicit-only`` on the real standalone host: the dialog creates, renames and deletes a group file
through the guarded routes (page token, same origin), the new card inserts its members, and a host started with
``--explicit-only`` makes a card click insert ``embedding:name``, which Encode then uses."""

from __future__ import annotations

import json

import pytest
from library_fixture import build
from page_actions import encode
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.browser

POS, NEG = "#txt2img_prompt textarea", "#txt2img_neg_prompt textarea"


def group(page, name: str):
    return page.locator(".sdemb-group").filter(has=page.locator(".name", has_text=name)).first


def open_new_group_dialog(page):
    """Click "New group" until its dialog is open (three tries). Once, on a cold first run under load, the click
    right after the first paint opened nothing: it landed while the pane was being replaced, before the script
    attached to the new one (noted for the tab script)."""
    dialog = page.locator("dialog.sdemb-group-dialog")
    for _ in range(3):
        page.click(".sdemb-new-group")
        try:
            dialog.wait_for(state="visible", timeout=10_000)
            return dialog
        except PlaywrightTimeout:
            continue
    dialog.wait_for(state="visible", timeout=10_000)
    return dialog


def test_the_dialog_creates_edits_and_deletes_a_group(tmp_path, host_factory, open_page):
    folder = build(tmp_path / "embeddings")
    page, watch = open_page(host_factory(folder))
    dialog = open_new_group_dialog(page)
    dialog.locator("[name=name]").fill("My negatives")
    dialog.locator("[name=keyword]").first.fill("EasyNegative")
    dialog.locator(".sdemb-member-add").click()
    dialog.locator("[name=keyword]").nth(1).fill("styled")
    dialog.locator("[name=weight]").nth(1).fill("0.8")
    dialog.locator("[name=target]").select_option("negative")
    dialog.locator(".sdemb-save").click()
    group(page, "My negatives").wait_for()
    saved = json.loads((folder / "My negatives.tigroup.json").read_text(encoding="utf-8"))
    assert saved["members"] == [{"keyword": "EasyNegative"}, {"keyword": "styled", "weight": 0.8}]
    group(page, "My negatives").click()
    assert page.input_value(NEG) == "EasyNegative (styled:0.8)" and page.input_value(POS) == ""

    group(page, "My negatives").hover()
    group(page, "My negatives").locator(".sdemb-group-edit").click()
    dialog.locator("[name=name]").fill("bad/name")
    dialog.locator(".sdemb-save").click()
    page.wait_for_function("() => /a group name cannot hold/.test(document.querySelector("  # the host's answer
                           "'dialog.sdemb-group-dialog .sdemb-error').textContent)")  # still open, nothing written
    dialog.locator("[name=name]").fill("Negs")
    dialog.locator(".sdemb-save").click()
    group(page, "Negs").wait_for()
    assert not (folder / "My negatives.tigroup.json").exists() and (folder / "Negs.tigroup.json").exists()

    page.evaluate("() => { window.confirm = () => true; }")
    group(page, "Negs").hover()
    group(page, "Negs").locator(".sdemb-group-edit").click()
    dialog.locator(".sdemb-delete").click()
    page.wait_for_function("() => !document.querySelector('.sdemb-group')")
    assert not (folder / "Negs.tigroup.json").exists()
    assert watch.errors == []


def test_explicit_only_host_inserts_embedding_name_and_encode_uses_it(tmp_path, host_factory, open_page):
    page, watch = open_page(host_factory(build(tmp_path / "embeddings"), extra=("--explicit-only",)))
    page.locator('#txt2img_textual_inversion_cards .card[data-name="EasyNegative"]').click()
    assert page.input_value(NEG) == "embedding:EasyNegative"
    page.fill(POS, "img-embed")  # a keyword typed alone stays a word here
    text = encode(page, watch)
    assert "EasyNegative.safetensors" in text and "TI hashes:" in text and "img-embed: " not in text
    assert "'img-embed' stays plain text: bare keywords are off" in text
    assert watch.errors == []


def test_new_group_click_on_a_pane_gradio_just_replaced_opens_the_dialog(tmp_path, host_factory, open_page):
    """A click that lands between gradio replacing the pane and the script's next-frame re-attach still opens the
    dialog. The replacement is done by hand (a clone put in the pane's place, as a re-render does, then a click in
    the same task, before any frame): gradio's own timing cannot be steered from a test."""
    page, watch = open_page(host_factory(build(tmp_path / "embeddings")))
    page.locator(".sdemb-new-group").wait_for()
    page.evaluate("""() => {
        const old = document.querySelector('.sdemb-pane'), copy = old.cloneNode(true);
        delete copy.dataset.sdembInit;
        old.replaceWith(copy);
        copy.querySelector('.sdemb-new-group').click();
    }""")
    page.locator("dialog.sdemb-group-dialog").wait_for(state="visible", timeout=5_000)
    assert watch.errors == []
