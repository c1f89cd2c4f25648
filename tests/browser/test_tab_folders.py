"""The folder tree (folding, filtering, hundreds of folders), hidden dot files and the Path sort, in Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import vectors, write_safetensors
from library_fixture import build

pytestmark = pytest.mark.browser

T = "#txt2img_textual_inversion"
SEARCH = f"{T}_extra_search"


def names(page) -> list[str]:
    return page.locator(f"{T}_cards .card").evaluate_all("els => els.map(e => e.dataset.name)")


def rows(page) -> list[str]:
    return page.locator(f"{T}_tree .sdemb-folder-btn").evaluate_all("els => els.map(e => e.dataset.folder)")


def folder(page, path: str):
    return page.locator(f'{T}_tree .sdemb-folder-btn[data-folder="{path}"]')


def chevron(page, path: str):
    return page.locator(f'{T}_tree .sdemb-chevron[data-toggle="{path}"]')


def build_small(root: Path) -> Path:
    build(root)
    write_safetensors(root / "deep" / "deep-top.safetensors", {"emb_params": vectors(1, seed=20)})
    write_safetensors(root / "deep" / "er" / "deep-inner.safetensors", {"emb_params": vectors(1, seed=21)})
    write_safetensors(root / ".dotted.safetensors", {"emb_params": vectors(1, seed=22)})
    write_safetensors(root / ".stash" / "stashed.safetensors", {"emb_params": vectors(1, seed=23)})
    return root


@pytest.fixture
def small(shared_host, open_page):
    page, watch = open_page(shared_host(build_small))
    yield page
    assert watch.errors == [] and watch.dialogs == []


def test_few_folders_start_unfolded_and_a_chevron_folds_one(small):
    page = small
    assert "deep/er" in rows(page) and chevron(page, "deep").get_attribute("aria-expanded") == "true"
    chevron(page, "deep").click()
    assert "deep/er" not in rows(page) and "deep" in rows(page)
    assert chevron(page, "deep").get_attribute("aria-expanded") == "false"
    assert set(names(page)) >= {"deep-top", "deep-inner", "cat"}  # folding filters nothing
    chevron(page, "deep").click()
    assert "deep/er" in rows(page)


def test_clicking_a_folder_name_filters_to_it_and_its_sub_folders(small):
    page = small
    chevron(page, "deep").click()
    folder(page, "deep").click()
    assert sorted(names(page)) == ["deep-inner", "deep-top"]
    assert "sdemb-on" in folder(page, "deep").get_attribute("class")
    folder(page, "").click()
    assert "cat" in names(page)


def test_hidden_cards_show_only_for_searches_of_four_characters(small):
    page = small
    assert ".dotted" not in names(page) and "stashed" not in names(page)
    assert ".stash" not in rows(page)  # hidden folders stay out of the tree
    page.fill(SEARCH, "dot")
    assert names(page) == []
    page.fill(SEARCH, "dott")
    assert names(page) == [".dotted"]
    page.fill(SEARCH, "stashed")
    assert names(page) == ["stashed"]
    page.fill(SEARCH, "")
    assert ".dotted" not in names(page)


def test_path_sort_orders_by_relative_path(small):
    page = small
    page.select_option(f"{T}_extra_sort", "path")
    shown = names(page)
    # cat.pt, deep/deep-top, deep/er/deep-inner, easynegative.safetensors, negative/plain-thing, ..., xl/ last
    assert shown[:5] == ["cat", "deep-top", "deep-inner", "EasyNegative", "plain-thing"]
    assert shown[-1] == "big-xl"


def test_hundreds_of_folders_start_folded_below_the_first_level(tmp_path, host_factory, open_page):
    root = tmp_path / "embeddings"
    for i in range(120):
        write_safetensors(root / f"pack{i:03d}" / "inner" / f"e{i:03d}.safetensors", {"emb_params": vectors(1, seed=i)})
    page, watch = open_page(host_factory(root))
    shown = rows(page)
    assert len(shown) == 121 and shown[0] == "" and "pack000/inner" not in shown  # "All folders" + first level
    assert chevron(page, "pack000").get_attribute("aria-expanded") == "false"
    height = page.locator(f"{T}_tree").evaluate("el => el.getBoundingClientRect().height")
    assert height <= 900 * 0.7 + 2  # the tree scrolls on its own; cards stay beside it, not 2,000 px down
    cards_top = page.locator(f"{T}_cards").evaluate("el => el.getBoundingClientRect().top")
    tree_top = page.locator(f"{T}_tree").evaluate("el => el.getBoundingClientRect().top")
    assert abs(cards_top - tree_top) < 5
    chevron(page, "pack007").click()
    assert "pack007/inner" in rows(page) and "pack008/inner" not in rows(page)
    folder(page, "pack007/inner").click()
    assert names(page) == ["e007"]
    assert watch.errors == []
