"""The page reads the WebUI's extra-networks settings (fake ``modules.shared.opts``) for the tab's first render."""

from __future__ import annotations

import pytest

from sd_embeddings.webui import settings


def test_defaults_when_the_webui_has_no_such_settings(webui) -> None:
    assert settings.tab_options() == {"hidden_models": "When searched", "sort": "path", "sort_dir": "asc"}


@pytest.mark.parametrize("field, order, hidden, expected", [
    ("Name", "Descending", "Always", {"hidden_models": "Always", "sort": "name", "sort_dir": "desc"}),
    ("Date Created", "Ascending", "Never", {"hidden_models": "Never", "sort": "mtime", "sort_dir": "asc"}),
    ("Date Modified", "Descending", "When searched",
     {"hidden_models": "When searched", "sort": "mtime", "sort_dir": "desc"}),
    ("Path", "Ascending", "garbage", {"hidden_models": "When searched", "sort": "path", "sort_dir": "asc"}),
    ("Unknown", "sideways", "Never", {"hidden_models": "Never", "sort": "name", "sort_dir": "asc"}),
])
def test_webui_settings_map_onto_the_tab(webui, field: str, order: str, hidden: str, expected: dict) -> None:
    webui.opts.extra_networks_card_order_field = field
    webui.opts.extra_networks_card_order = order
    webui.opts.extra_networks_hidden_models = hidden
    assert settings.tab_options() == expected


@pytest.mark.parametrize("has_lister", [True, False], ids=["1.8+", "1.7.0 (no lister)"])
def test_page_renders_with_the_webui_settings(webui, has_lister: bool) -> None:
    from sd_embeddings.webui import page

    base = webui.modules["modules.ui_extra_networks"].ExtraNetworksPage
    webui.opts.extra_networks_card_order_field = "Date Modified"
    webui.opts.extra_networks_card_order = "Descending"
    webui.opts.extra_networks_hidden_models = "Always"
    db = webui.make_db()
    ours = page.page_class(base)(lambda: db)
    if has_lister:
        ours.lister = type("Lister", (), {"reset": lambda self: None})()
    ours.read_user_metadata = lambda item: None
    ours.search_terms_from_path = lambda path: path
    ours.find_preview = ours.find_description = lambda path: None
    ours.get_sort_keys = lambda path: {}
    markup = ours.create_html("txt2img")
    assert '<option value="mtime" selected>' in markup and 'data-dir="desc"' in markup
    assert 'data-hidden-models="Always"' in markup


def test_page_items_read_sidecars_only_inside_the_folder(webui, tmp_path) -> None:
    """The WebUI's own ``find_description``/``find_preview``/``read_user_metadata`` open ``x.txt``, ``x.png`` and
    ``x.json`` through any link; the page's items read them through the library (links out are not read)."""
    import os
    from pathlib import Path

    from factories import vectors, write_a1111_pt

    from sd_embeddings.webui import page

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET")
    (outside / "secret.json").write_text('{"description": "SECRET", "notes": "SECRET"}')
    (outside / "secret.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    write_a1111_pt(webui.folder / "out.pt", vectors(1))
    for suffix in ("txt", "json", "png"):
        os.symlink(outside / f"secret.{suffix}", webui.folder / f"out.{suffix}")
    write_a1111_pt(webui.folder / "own.pt", vectors(1, seed=2))
    (webui.folder / "own.txt").write_text("own text")
    (webui.folder / "own.json").write_text('{"notes": "own notes"}')
    db = webui.make_db()
    db.load_textual_inversion_embeddings(force_reload=True)
    ours = page.page_class(webui.modules["modules.ui_extra_networks"].ExtraNetworksPage)(lambda: db)
    ours.search_terms_from_path = lambda path: path
    ours.get_sort_keys = lambda path: {}
    ours.link_preview = lambda filename: f"thumb?{filename}"
    # what the WebUI's own readers do (1.10 ``find_description``/``find_preview``): open whatever the name leads to
    ours.find_description = lambda path: Path(path + ".txt").read_text(encoding="utf-8")
    ours.find_preview = lambda path: ours.link_preview(path + ".png") if os.path.exists(path + ".png") else None
    items = {}
    for name in ("out", "own"):
        items[name] = ours.create_item(name)
        ours.read_user_metadata(items[name])
    assert items["out"]["description"] is None and items["out"]["preview"] is None
    assert items["out"]["user_metadata"] == {}
    assert items["own"]["description"] == "own text" and items["own"]["user_metadata"] == {"notes": "own notes"}
