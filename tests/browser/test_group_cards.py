"""Group cards in Chromium: one click puts each member into its own prompt box (weights as ``(name:0.8)``), the
next takes them all out (whole keywords only); the card names missing and unusable members; a broken group file is
shown and never inserted. Also the common-word badge and ComfyUI's ``embedding:name`` inserted and removed when bare
keywords are off. Host-less page (``static_tab.py``: the real shell, script and style; the only stand-in is the
HTTP server, answered from a real ``Library`` through the functions the routes call); group files are real files
written with ``group_store.save_group``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from factories import sdxl_vectors, vectors, write_safetensors

from sd_embeddings.library import Library
from sd_embeddings.library.group_store import save_group
from sd_embeddings.library.groups import Member
from sd_embeddings.records import Family

pytestmark = pytest.mark.browser

POS, NEG = "#txt2img_prompt textarea", "#txt2img_neg_prompt textarea"
XSS = "<img src=x onerror=alert(1)>"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tab(tmp_path, static_tab):
    root = tmp_path / "embeddings"
    write_safetensors(root / "EasyNegative.safetensors", {"emb_params": vectors(2, seed=1)})
    write_safetensors(root / "neg" / "bad-hands-5.safetensors", {"emb_params": vectors(3, seed=2)})
    write_safetensors(root / "negative_hand-neg.safetensors", {"emb_params": vectors(1, seed=3)})
    write_safetensors(root / "style.safetensors", {"emb_params": vectors(1, seed=4)})
    write_safetensors(root / "xl" / "xl-detail.safetensors", sdxl_vectors(1, seed=5))
    library = Library([root], family=Family.SD1, background_hashing=False)
    library.refresh()
    save_group(library, "Negatives", "the usual three", "auto",
               (Member("EasyNegative"), Member("bad-hands-5"), Member("negative_hand-neg", 0.8)))
    save_group(library, "Mixed", "", "auto", (Member("style", 1.2, "positive"), Member("EasyNegative", None,
                                                                                       "negative"),
                                               Member("missing-one"), Member("xl-detail", None, "positive")))
    (root / "Broken.tigroup.json").write_text('{"sd-embeddings group": 1, "members": "lots"}', encoding="utf-8")
    (root / f"{XSS}.tigroup.json").write_text(json.dumps({"sd-embeddings group": 1, "description": XSS,
                                                         "members": [{"keyword": "EasyNegative"}]}), encoding="utf-8")
    opened = static_tab(library)
    yield opened
    assert opened.errors == [] and opened.dialogs == []


def group(page, name: str):
    return page.locator(".sdemb-group").filter(has=page.locator(".name", has_text=name)).first


def test_a_group_goes_in_with_one_click_and_out_with_the_next(tab):
    page = tab.page
    assert page.locator(".sdemb-cards > .sdemb-card").first.get_attribute("class").count("sdemb-group") == 1
    group(page, "Negatives").click()
    assert page.input_value(NEG) == "EasyNegative bad-hands-5 (negative_hand-neg:0.8)"
    assert page.input_value(POS) == ""
    group(page, "Negatives").click()
    assert page.input_value(NEG) == ""


def test_removal_takes_whole_keywords_only_and_a_partial_set_is_completed(tab):
    page = tab.page
    page.fill(NEG, "lowres, EasyNegative_v2, (EasyNegative:1.1), bad-hands-50")
    group(page, "Negatives").click()  # EasyNegative is there (weighted): only the other two are added
    assert page.input_value(NEG) == ("lowres, EasyNegative_v2, (EasyNegative:1.1), bad-hands-50 bad-hands-5 "
                                     "(negative_hand-neg:0.8)")
    group(page, "Negatives").click()  # all three are there: all three go, longer words stay
    assert page.input_value(NEG) == "lowres, EasyNegative_v2, bad-hands-50"


def test_members_go_to_their_own_boxes_and_the_card_names_what_stays_text(tab):
    page = tab.page
    mixed = group(page, "Mixed")
    notes = mixed.locator(".sdemb-reason").all_inner_texts()
    assert notes[0] == "missing: missing-one"
    assert notes[1].startswith("not for this model: xl-detail (SDXL embedding")
    mixed.click()
    assert page.input_value(POS) == "(style:1.2) missing-one xl-detail"
    assert page.input_value(NEG) == "EasyNegative"
    toast = page.locator(".sdemb-toast")
    assert "missing-one (no embedding has this keyword)" in toast.inner_text() and "xl-detail" in toast.inner_text()
    mixed.click()
    assert page.input_value(POS) == "" and page.input_value(NEG) == ""


def test_shift_click_sends_every_member_to_the_other_box(tab):
    page = tab.page
    group(page, "Negatives").click(modifiers=["Shift"])
    assert page.input_value(POS) == "EasyNegative bad-hands-5 (negative_hand-neg:0.8)" and page.input_value(NEG) == ""


def test_a_broken_group_file_is_listed_and_never_inserted(tab):
    page = tab.page
    broken = group(page, "Broken")
    assert "sdemb-unusable" in broken.get_attribute("class")
    assert broken.locator(".sdemb-reason").inner_text() == "cannot be used: a group needs at least one member"
    broken.click()
    assert page.input_value(POS) == "" and page.input_value(NEG) == ""


def test_search_filters_groups_by_name_and_member(tab):
    page = tab.page
    page.fill(".sdemb-search", "hand-neg")
    assert page.locator(".sdemb-group .name").all_inner_texts() == ["Negatives"]
    page.fill(".sdemb-search", "")
    assert page.locator(".sdemb-group .name").all_inner_texts() == [XSS, "Broken", "Mixed", "Negatives"]


def test_a_hostile_group_name_is_shown_as_text_and_refused(tab):
    """The fixture's teardown also checks that no alert() ran (no dialog) and no script error happened."""
    page = tab.page
    hostile = page.locator(".sdemb-group").first
    assert hostile.locator(".name").inner_text() == XSS and hostile.locator("img").count() == 0
    assert "cannot be used: a group name cannot hold" in hostile.locator(".sdemb-reason").inner_text()


def test_a_common_word_keyword_has_a_badge(tab):
    page = tab.page
    badge = page.locator('.sdemb-card[data-name="style"] .sdemb-common')
    assert badge.inner_text().lower() == "word"
    assert "common English word" in badge.get_attribute("title")
    assert page.locator('.sdemb-card[data-name="EasyNegative"] .sdemb-common').count() == 0


def test_with_bare_keywords_off_clicks_insert_and_remove_embedding_name(tab):
    page = tab.page
    page.evaluate("() => { window.opts = { sd_embeddings_bare_keywords: false }; }")
    page.locator('.sdemb-card[data-name="style"]').click()
    assert page.input_value(POS) == "embedding:style"
    group(page, "Negatives").click()
    assert page.input_value(NEG) == "embedding:EasyNegative embedding:bad-hands-5 (embedding:negative_hand-neg:0.8)"
    page.fill(NEG, "(embedding:neg/bad-hands-5.safetensors:1.2), embedding:EasyNegative.safetensors, lowres, "
                   "(negative_hand-neg:0.8)")
    group(page, "Negatives").click()
    assert page.input_value(NEG) == "lowres"
    page.focus(POS)  # the style card goes to the box used last
    page.locator('.sdemb-card[data-name="style"]').click()
    assert page.input_value(POS) == ""


def test_screenshot(tmp_path, static_tab):
    """The README picture of groups (its own tidy library). It goes to test-artifacts/; with
    SDEMB_SCREENSHOTS=docs also to docs/screenshots/."""
    root = tmp_path / "shots"
    for i, name in enumerate(["EasyNegative", "negative/bad-hands-5", "negative_hand-neg", "style", "FastNegativeV2",
                              "portrait/detailed-eyes"]):
        write_safetensors(root / f"{name}.safetensors", {"emb_params": vectors(1 + i % 3, seed=i)})
    library = Library([root], family=Family.SD1, background_hashing=False)
    library.refresh()
    save_group(library, "Everyday negatives", "", "auto",
               (Member("EasyNegative"), Member("bad-hands-5"), Member("negative_hand-neg", 0.8)))
    save_group(library, "Portrait", "", "auto", (Member("detailed-eyes", 1.1, "positive"), Member("FastNegativeV2"),
                                                 Member("old-skin-fix", None, "positive")))
    page = static_tab(library).page
    page.set_viewport_size({"width": 1100, "height": 600})
    page.fill(POS, "portrait of a woman, soft light")
    group(page, "Everyday negatives").click()
    targets = [ROOT / "test-artifacts" / "groups.png"]
    if os.environ.get("SDEMB_SCREENSHOTS") == "docs":
        targets.append(ROOT / "docs" / "screenshots" / "groups.png")
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target))
