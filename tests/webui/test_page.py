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
