"""Hidden entries, the initial sort and the WebUI settings behind them (no browser)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from factories import vectors, write_safetensors

from sd_embeddings.library import Library
from sd_embeddings.tab import card_rows, cards, first_page, shell


@pytest.fixture
def dotted(tmp_path: Path) -> Library:
    root = tmp_path / "embeddings"
    write_safetensors(root / "plain.safetensors", {"emb_params": vectors(1, seed=1)})
    write_safetensors(root / ".dotfile.safetensors", {"emb_params": vectors(1, seed=2)})
    write_safetensors(root / ".secret" / "inside.safetensors", {"emb_params": vectors(1, seed=3)})
    write_safetensors(root / "a" / ".b" / "deep.safetensors", {"emb_params": vectors(1, seed=4)})
    library = Library([root], background_hashing=False)
    library.refresh()
    return library


@pytest.mark.parametrize("relpath, hidden", [
    ("x.pt", False), (".x.pt", True), (".git/x.pt", True), ("a/.b/x.pt", True), ("a/b.c/x.pt", False),
    ("a.b/x.pt", False),
])
def test_is_hidden(relpath: str, hidden: bool) -> None:
    assert cards.is_hidden(relpath) is hidden


def test_payload_flags_hidden_cards(dotted: Library) -> None:
    flags = {card["keyword"]: card["hidden"] for card in card_rows.expand(cards.cards_payload(dotted))}
    assert flags == {"plain": False, ".dotfile": True, "inside": True, "deep": True}


@pytest.mark.parametrize("mode, shown", [
    ("When searched", {"plain"}), ("Never", {"plain"}), ("Always", {"plain", ".dotfile", "inside", "deep"}),
    ("bogus", {"plain"}),
])
def test_a_first_page_leaves_hidden_cards_out_unless_always(dotted: Library, mode: str, shown: set[str]) -> None:
    doc = first_page.first_page_payload(dotted, hidden_models=mode, size=3)
    keywords = {card["keyword"] for card in card_rows.expand(doc)}
    assert keywords <= shown and len(keywords) == min(3, len(shown))
    assert not doc["complete"] and doc["total"] == 4 and doc["counts"][doc["folders"].index("")] == len(shown)
    markup = shell.pane_html(dotted, hidden_models=mode)
    expected = mode if mode in cards.HIDDEN_MODES else cards.HIDDEN_DEFAULT
    assert f'data-hidden-models="{expected}"' in markup


def test_a_small_library_goes_inline_whole(dotted: Library) -> None:
    doc = first_page.first_page_payload(dotted, sort="mtime", sort_dir="desc")
    assert doc["complete"] and doc["cards"] == cards.cards_payload(dotted)["cards"]


@pytest.mark.parametrize("sort", cards.SORT_KEYS)
@pytest.mark.parametrize("direction", cards.SORT_DIRS)
def test_a_first_page_is_the_head_of_the_sorted_view(tmp_path: Path, sort: str, direction: str) -> None:
    root = tmp_path / "embeddings"
    for i in range(9):
        folder = root / ("Zed" if i % 3 == 0 else "abc" if i % 3 == 1 else "")
        write_safetensors(folder / f"E{(i * 5) % 9}-{i}.safetensors", {"emb_params": vectors(1 + i % 3, seed=i)})
    library = Library([root], background_hashing=False)
    library.refresh()
    models = cards.card_models(library)
    keys = {"name": lambda c: 0, "path": lambda c: c.relpath.lower()}.get(sort, lambda c: getattr(c, sort))
    ordered = sorted(models, key=keys)  # stable: ties keep the library order, as in the script
    expected = [c.keyword for c in (ordered[::-1] if direction == "desc" else ordered)]
    assert [c.keyword for c in first_page.view_order(models, sort, direction)] == expected
    doc = first_page.first_page_payload(library, sort=sort, sort_dir=direction, size=4)
    assert [card["keyword"] for card in card_rows.expand(doc)] == expected[:4]
    assert dict(zip(doc["folders"], doc["counts"])) == {"": 9, "Zed": 3, "abc": 3}


@pytest.mark.parametrize("sort, direction, selected, arrow", [
    ("mtime", "desc", "mtime", 'data-dir="desc"'), ("path", "asc", "path", 'data-dir="asc"'),
    ("nonsense", "sideways", "name", 'data-dir="asc"'),
])
def test_initial_sort_is_preselected(dotted: Library, sort: str, direction: str, selected: str, arrow: str) -> None:
    markup = shell.pane_html(dotted, sort=sort, sort_dir=direction)
    assert re.findall(r'<option value="(\w+)" selected>', markup) == [selected]
    assert arrow in markup
    assert ('data-sortdir="Descending"' in markup) is (direction == "desc")


def test_replaced_preview_gets_a_new_url(tmp_path: Path) -> None:
    import os

    root = tmp_path / "embeddings"
    write_safetensors(root / "cat.safetensors", {"emb_params": vectors(1)})
    (root / "cat.preview.png").write_bytes(b"old")
    library = Library([root], background_hashing=False)
    library.refresh()
    before = cards.card_models(library)[0].preview
    os.utime(root / "cat.preview.png", ns=(10**18, 10**18))
    library.refresh()
    after = cards.card_models(library)[0].preview
    assert before != after and "path=cat.preview.png" in after


def test_the_first_page_builds_only_its_own_cards(tmp_path: Path, monkeypatch) -> None:
    """Every file has an ``x.json``; the first page reads those of the cards it carries, not all of them."""
    root = tmp_path / "embeddings"
    for i in range(30):
        write_safetensors(root / f"f{i % 4}" / f"emb{i:02}.safetensors", {"emb_params": vectors(1, seed=i)})
        (root / f"f{i % 4}" / f"emb{i:02}.json").write_text('{"description": "d"}')
    library = Library([root], background_hashing=False)
    library.refresh()
    read: list[str] = []
    original = Library.user_metadata
    monkeypatch.setattr(Library, "user_metadata", staticmethod(lambda entry: read.append(entry.keyword)
                                                               or original(entry)))
    doc = first_page.first_page_payload(library, sort="path", sort_dir="desc", size=5)
    assert len(read) == 5 and doc["total"] == 30 and doc["counts"][doc["folders"].index("")] == 30
    assert [card["keyword"] for card in card_rows.expand(doc)] == read
    assert read == [f"emb{i:02}" for i in sorted(range(30), key=lambda i: (i % 4, i), reverse=True)[:5]]
