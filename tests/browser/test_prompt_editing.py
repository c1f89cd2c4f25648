"""Clicking cards edits the prompt (whole keywords only, the caret, a note for cards that stay plain text), and the
card's parts do not cover each other. Host-less page (``static_tab.py``): the real shell, script and style."""

from __future__ import annotations

import json

import pytest
from factories import sdxl_vectors, vectors, write_safetensors

from sd_embeddings.library import Library
from sd_embeddings.records import Family

pytestmark = pytest.mark.browser

POS = "#txt2img_prompt textarea"
LONG = "sample-image-v2, a cat, (sample-image:1.3), mysample-image, sample-images"


@pytest.fixture
def tab(tmp_path, static_tab):
    root = tmp_path / "embeddings"
    write_safetensors(root / "sample-image.safetensors", {"emb_params": vectors(1, seed=1)})
    write_safetensors(root / "embp.safetensors", {"emb_params": vectors(1, seed=2)})
    write_safetensors(root / "xl" / "big-xl.safetensors", sdxl_vectors(1, seed=3))
    write_safetensors(root / "bad-hands-5.safetensors", {"emb_params": vectors(3, seed=4)})
    (root / "bad-hands-5.json").write_text(json.dumps({"preferred weight": 0.8}), encoding="utf-8")
    write_safetensors(root / "negativeXL_D.safetensors", sdxl_vectors(10, seed=7))  # the widest badges
    (root / "negativeXL_D.json").write_text(json.dumps({"preferred weight": 1.25}), encoding="utf-8")
    write_safetensors(root / "a" / "twin.safetensors", {"emb_params": vectors(1, seed=5)})
    write_safetensors(root / "b" / "twin.safetensors", {"emb_params": vectors(1, seed=6)})
    library = Library([root], family=Family.SD1, background_hashing=False)
    library.refresh()
    opened = static_tab(library)
    yield opened
    assert opened.errors == [] and opened.dialogs == []


def card(page, name: str, nth: int = 0):
    return page.locator(f'.sdemb-card[data-name="{name}"]').nth(nth)


def test_second_click_removes_only_the_whole_keyword(tab):
    page = tab.page
    page.fill(POS, LONG)
    card(page, "sample-image").click()
    assert page.input_value(POS) == "sample-image-v2, a cat, mysample-image, sample-images"
    card(page, "sample-image").click()  # nothing left to remove: it is added
    assert page.input_value(POS) == "sample-image-v2, a cat, mysample-image, sample-images sample-image"


@pytest.mark.parametrize("prompt, keyword, expected", [
    (LONG, "sample-image", "sample-image-v2, a cat, mysample-image, sample-images"),
    ("sample-image, cat", "sample-image", "cat"),
    ("cat,sample-image", "sample-image", "cat"),
    ("[sample-image:cat:5]", "sample-image", "[:cat:5]"),
    ("(sample-image), sample_image2, sample-image_x", "sample-image", "sample_image2, sample-image_x"),
    ("a sample-image2 b", "sample-image", None),
    ("a Sample-Image b", "sample-image", "a b"),
    ("x-cat cat-x cat_x cat", "cat", "x-cat cat-x cat_x"),
    ("(cat:0.5) ( cat : 1.2 ) (cat)", "cat", ""),
    ("\\(cat\\)", "cat", "\\(\\)"),
])
def test_remove_from_prompt_cases(tab, prompt, keyword, expected):
    assert tab.page.evaluate("([v, k]) => window.sdEmbeddings.removeFromPrompt(v, k, ' ')", [prompt, keyword]) \
        == expected


@pytest.mark.parametrize("prompt, caret, sep, expected", [
    ("a cat, in a garden", 5, " ", "a cat embp, in a garden"),
    ("a cat, in a garden", 5, ", ", "a cat, embp, in a garden"),
    ("a cat in a garden", 5, " ", "a cat embp in a garden"),
    ("first last", 5, ", ", "first, embp, last"),
    ("(a cat)", 6, " ", "(a cat embp)"),
    ("(a cat)", 1, " ", "(embp a cat)"),
    ("", 0, " ", "embp"),
    ("a cat ", 6, " ", "a cat embp"),
])
def test_insert_at_the_caret_cases(tab, prompt, caret, sep, expected):
    done = tab.page.evaluate("([v, p, s]) => window.sdEmbeddings.insertIntoPrompt(v, 'embp', p, s)",
                             [prompt, caret, sep])
    assert done["value"] == expected


def test_click_inserts_at_the_caret_before_a_comma(tab):
    page = tab.page
    page.fill(POS, "a cat, in a garden")
    page.click(POS)
    page.evaluate(f"() => document.querySelector('{POS}').setSelectionRange(5, 5)")
    card(page, "embp").click()
    assert page.input_value(POS) == "a cat embp, in a garden"


def test_an_incompatible_card_is_inserted_with_a_note_under_the_prompt(tab):
    page = tab.page
    assert "sdemb-unusable" in card(page, "big-xl").get_attribute("class")
    card(page, "big-xl").click()
    assert page.input_value(POS) == "big-xl"
    toast = page.locator(".sdemb-toast")
    assert toast.is_visible() and "big-xl stays plain text" in toast.inner_text()
    assert "model is SD1.5" in toast.inner_text()
    box = page.locator(POS).bounding_box()
    assert toast.bounding_box()["y"] >= box["y"] + box["height"]  # under the prompt, not over it
    card(page, "embp").click()
    card(page, "big-xl").click()  # removing says nothing new
    assert page.input_value(POS) == "embp"


def overlaps(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


@pytest.mark.parametrize("name, badges", [("bad-hands-5", ["SD1", "3v", "neg", "×0.8"]),
                                          ("negativeXL_D", ["SDXL", "10v", "neg", "×1.25"])])
def test_the_edit_pencil_leaves_four_badges_uncovered(tab, name, badges):
    page = tab.page
    target = card(page, name)
    assert target.locator(".sdemb-badge").all_inner_texts() == badges
    target.hover()
    pencil = target.locator(".sdemb-edit").bounding_box()
    for badge in target.locator(".sdemb-badge").all():
        assert not overlaps(badge.bounding_box(), pencil), badge.inner_text()


def test_the_duplicate_reason_leaves_the_placeholder_letter_uncovered(tab):
    page = tab.page
    loser = page.locator(".sdemb-card.sdemb-collision.sdemb-unusable")
    assert loser.count() == 1 and loser.locator(".sdemb-reason").inner_text().startswith("same keyword as")
    letter = loser.locator(".sdemb-placeholder").evaluate(
        "el => { const r = document.createRange(); r.selectNodeContents(el); const b = r.getBoundingClientRect();"
        " return {x: b.x, y: b.y, width: b.width, height: b.height}; }")
    for note in (".sdemb-reason", ".sdemb-clash", ".name"):
        assert not overlaps(loser.locator(note).bounding_box(), letter), note


COUNT_REGEX_TEXT = """([value, keyword]) => {
  // Characters handed to regular expressions (every test/replace/match goes through RegExp.prototype.exec; the
  // sticky calls of split's own scan are left out): work counted, never timed.
  const exec = RegExp.prototype.exec;
  let read = 0;
  RegExp.prototype.exec = function (text) {
    if (!this.sticky) read += String(text).length;
    return exec.call(this, text);
  };
  try { window.sdEmbeddings.removeFromPrompt(value, keyword, ", "); } finally { RegExp.prototype.exec = exec; }
  return read;
}"""


def test_removing_a_keyword_reads_a_long_prompt_a_bounded_number_of_times(tab):
    """Each occurrence removed looks at the end of what is kept, not at all of it (which made a 20 KB prompt with
    long blank runs take two minutes): twice the prompt, about twice the characters read."""
    def read(count: int) -> int:
        prompt = ("x" + " " * 40 + "x sample-image, ") * count
        return tab.page.evaluate(COUNT_REGEX_TEXT, [prompt, "sample-image"])

    small, large = read(200), read(400)
    assert large <= 2.2 * small, (small, large)
    assert small <= 3 * len(("x" + " " * 40 + "x sample-image, ") * 200)
