"""The cards list in pages, in Chromium: a few hundred cards with a small first screen and small pages (the sizes
are lowered so the test stays fast; ``benchmarks/cards_scale.py`` runs 50,000). The script fetches every page of
one build, and then search, sort, the folder tree, the count and Refresh work on the whole list, card for card the
same as the server's own reading of its rows; a build the host no longer holds makes it start again.

On the host-less page of ``static_tab.py`` (real shell, script, style and Library; the routed ``/cards`` answers
come from ``card_pages.answer``, as the route's do).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from factories import vectors, write_safetensors
from PIL import Image

from sd_embeddings.library import Library
from sd_embeddings.records import Family
from sd_embeddings.tab import card_pages, card_rows, cards, first_page

pytestmark = pytest.mark.browser

COUNT, FIRST, PAGE = 230, 20, 50
STATE = "window.sdEmbeddings.states.get(document.querySelector('.sdemb-pane'))"
CARDS = f"""() => {STATE}.all.map((c) => {{
  const card = Object.assign({{}}, c); delete card.idx; delete card.search; delete card.pathKey; return card; }})"""
SHOWN = "els => els.map(e => e.dataset.name)"


def paged_library(root: Path, count: int = COUNT) -> Library:
    """Cards in nested folders (some hidden), 1-4 vectors, spread times, some previews and descriptions."""
    for i in range(count):
        folder = root / ["", "packs/one", "packs/two", "solo", ".hidden"][i % 5] / ("deep" if i % 7 == 0 else "")
        path = write_safetensors(folder / f"{'Emb' if i % 3 else 'emb'}-{(i * 37) % count:03d}.safetensors",
                                 {"emb_params": vectors(1 + i % 4, seed=i)})
        os.utime(path, (1_700_000_000 + i % 13 * 100, 1_700_000_000 + i % 13 * 100))
        if i % 9 == 0:
            Image.new("RGB", (8, 8), (i % 255, 40, 90)).save(path.with_suffix(".preview.png"))
        if i % 11 == 0:
            path.with_suffix(".txt").write_text(f"words for card {i}", encoding="utf-8")
    library = Library([root], family=Family.SD1, background_hashing=False)
    library.refresh()
    return library


def wait_whole(tab, count: int) -> None:
    tab.page.wait_for_function(f"() => {{ const s = {STATE}; return s && !s.partial && s.all.length === {count}; }}",
                               timeout=30_000)


def wait_held(tab, count: int = 1) -> None:
    """Until the page has asked for ``count`` pages (Playwright answers routes while the test waits)."""
    for _ in range(600):
        if len(tab.held) >= count:
            return
        tab.page.wait_for_timeout(50)
    raise AssertionError(f"no request held; asked: {tab.urls}")


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(cards, "FIRST_PAGE", FIRST)


def test_pages_make_one_list_for_search_sort_tree_count_and_refresh(tmp_path, static_tab, small_pages):
    library = paged_library(tmp_path / "embeddings")
    tab = static_tab(library, page_size=PAGE)
    wait_whole(tab, COUNT)
    build = card_pages.snapshot(library).build
    asked = [url.partition("/sd-embeddings/v1")[2] for url in tab.urls if "/cards" in url]
    assert asked[0] == "/cards" and sorted(asked[1:]) == [f"/cards?page={page}&build={build}" for page in range(1, 5)]
    assert tab.page.evaluate(CARDS) == card_rows.expand(cards.cards_payload(library))
    models = cards.card_models(library)
    visible = [card for card in models if not card.hidden]
    assert tab.page.text_content(".sdemb-count") == f"{len(visible)} of {COUNT}"
    last = visible[-1].keyword  # on the last page
    tab.page.fill("#txt2img_textual_inversion_extra_search", last)
    tab.page.wait_for_function("() => document.querySelector('.sdemb-count').textContent.startsWith('1 of')")
    assert tab.page.locator(".sdemb-card").evaluate_all(SHOWN) == [last]
    tab.page.fill("#txt2img_textual_inversion_extra_search", "")
    tab.page.select_option("#txt2img_textual_inversion_extra_sort", "size")
    tab.page.click("#txt2img_textual_inversion_extra_sort_dir")
    shown = tab.page.locator(".sdemb-card").evaluate_all(SHOWN)
    assert shown == [card.keyword for card in first_page.view_order(visible, "size", "desc")][:len(shown)]
    tree = dict(tab.page.locator(".sdemb-folder-btn").evaluate_all(
        "els => els.map(e => [e.dataset.folder, Number(e.querySelector('small').textContent)])"))
    counts = first_page.folder_counts(visible)
    assert tree == {folder: counts.get(folder, 0) for folder in tree} and tree[""] == len(visible)
    write_safetensors(Path(library.folders[0]) / "packs" / "one" / "zz-new.safetensors", {"emb_params": vectors(1)})
    tab.page.click("#txt2img_textual_inversion_extra_refresh")
    wait_whole(tab, COUNT + 1)
    tab.page.fill("#txt2img_textual_inversion_extra_search", "zz-new")
    tab.page.wait_for_function("() => document.querySelector('.sdemb-count').textContent === "
                               f"'1 of {COUNT + 1}'")
    assert tab.errors == [] and tab.dialogs == []


def test_a_build_the_host_no_longer_holds_makes_the_script_start_again(tmp_path, static_tab, small_pages,
                                                                       monkeypatch):
    monkeypatch.setattr(card_pages, "KEEP", 1)
    library = paged_library(tmp_path / "embeddings")
    tab = static_tab(library, hold_cards=True, page_size=PAGE)
    wait_held(tab)
    tab.answer_cards(tab.held.pop(0))  # page 0 of the first build
    wait_held(tab, 2)
    build = card_pages.snapshot(library).build
    assert sorted(route.request.url.partition("?")[2] for route in tab.held) == \
        [f"page={page}&build={build}" for page in (1, 2)]  # two at a time
    write_safetensors(Path(library.folders[0]) / "solo" / "arrived.safetensors", {"emb_params": vectors(1)})
    library.refresh()
    card_pages.snapshot(library)  # the host builds the new list (another tab asked): the first build is let go
    tab.release()  # pages of the first build: 409
    wait_whole(tab, COUNT + 1)
    assert tab.page.evaluate(CARDS) == card_rows.expand(cards.cards_payload(library))
    assert tab.errors == []


def test_polling_lets_a_paged_load_finish_then_loads_the_change(tmp_path, static_tab, small_pages):
    """A change noticed while the pages of a build are on their way does not restart the load (with pages slower
    than the poll it would never finish); the next poll after it loads the change."""
    library = paged_library(tmp_path / "embeddings")
    tab = static_tab(library, hold_cards=True, page_size=PAGE, watch_ms=100)
    wait_held(tab)
    tab.answer_cards(tab.held.pop(0))
    wait_held(tab, 2)
    write_safetensors(Path(library.folders[0]) / "solo" / "arrived.safetensors", {"emb_params": vectors(1)})
    library.refresh()
    polls = tab.requests.count("/sd-embeddings/v1/version")
    for _ in range(600):
        if tab.requests.count("/sd-embeddings/v1/version") >= polls + 5:
            break
        tab.page.wait_for_timeout(50)
    assert tab.requests.count("/sd-embeddings/v1/version") >= polls + 5
    assert len(tab.held) == 2 and tab.requests.count("/sd-embeddings/v1/cards") == 3  # pages 0-2: no restart
    tab.release()
    wait_whole(tab, COUNT + 1)
    assert tab.errors == []
