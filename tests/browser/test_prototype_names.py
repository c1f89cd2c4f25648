"""Folder and embedding names that are also names of a plain JavaScript object's properties (``constructor``,
``toString``, ``__proto__`` ...) are names like any other: the folder tree shows their counts, a click filters to
them, their cards show. In Chromium, on the host-less page of ``static_tab.py`` (real shell, script, style and
Library), with the first page from the server (its counts) and the full document (the script's own counts)."""

from __future__ import annotations

import pytest
from factories import vectors, write_safetensors

from sd_embeddings.library import Library
from sd_embeddings.records import Family
from sd_embeddings.tab import cards

pytestmark = pytest.mark.browser

PROTOTYPE_NAMES = ["constructor", "toString", "hasOwnProperty", "__proto__", "valueOf", "__defineGetter__"]
TREE = "#txt2img_textual_inversion_tree"


def _library(root, filler: int) -> Library:
    for i, name in enumerate(PROTOTYPE_NAMES):
        write_safetensors(root / name / f"{name}.safetensors", {"emb_params": vectors(1, seed=i)})
        write_safetensors(root / name / "inner" / f"{name}-inner.safetensors", {"emb_params": vectors(1, seed=50 + i)})
    for i in range(filler):
        write_safetensors(root / f"filler-{i:03d}.safetensors", {"emb_params": vectors(1, seed=100 + i)})
    library = Library([root], family=Family.SD1, background_hashing=False)
    library.refresh()
    return library


def _tree_counts(page) -> dict[str, str]:
    return dict(page.locator(f"{TREE} .sdemb-folder-btn").evaluate_all(
        "els => els.map(e => [e.dataset.folder, e.querySelector('small').textContent])"))


@pytest.mark.parametrize("filler", [0, cards.FIRST_PAGE + 5], ids=["whole-document", "first-page-then-whole"])
def test_prototype_names_are_plain_names(tmp_path, static_tab, filler):
    library = _library(tmp_path / "embeddings", filler)
    tab = static_tab(library, hold_cards=bool(filler))
    expected = {"": str(len(PROTOTYPE_NAMES) * 2 + filler)} | {name: "2" for name in PROTOTYPE_NAMES} | \
        {f"{name}/inner": "1" for name in PROTOTYPE_NAMES}
    assert _tree_counts(tab.page) == expected
    if filler:
        tab.release()
        tab.page.wait_for_function("() => !window.sdEmbeddings.states.get(document.querySelector('.sdemb-pane'))"
                                   ".partial")
        assert _tree_counts(tab.page) == expected
    for name in PROTOTYPE_NAMES:
        tab.page.locator(f'{TREE} .sdemb-folder-btn[data-folder="{name}"]').click()
        shown = tab.page.locator("#txt2img_textual_inversion_cards .card").evaluate_all(
            "els => els.map(e => e.dataset.name)")
        assert sorted(shown) == sorted([name, f"{name}-inner"])
    assert tab.errors == [] and tab.dialogs == []
