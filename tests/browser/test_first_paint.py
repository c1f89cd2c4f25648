"""First paint from the inline document, in Chromium: no request, the user's sort, equal to the script's own
rendering after the full document and after Refresh; hostile text stays text; gradio re-renders are survived.

Most tests use the host-less page of ``static_tab.py`` (the real shell, script and style; routed JSON answers from
a real Library); the last one runs the real standalone host (gradio 6).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from factories import sdxl_vectors, vectors, write_safetensors
from library_fixture import XSS, build

from sd_embeddings.library import Library
from sd_embeddings.records import Family
from sd_embeddings.tab import cards, shell

pytestmark = pytest.mark.browser

PWN = "</script><script>window.__pwned = 1</script><img src=x onerror='window.__pwned = 2'>"


def many(root: Path, count: int = 75) -> Library:
    """``count`` cards (more than one page): mixed-case names, sub-folders, 1-4 vectors, distinct and equal
    times, a hidden file, a description and a folder that try to close the inline script."""
    for i in range(count):
        folder = root / ("Packs/inner" if i % 4 == 0 else "alpha" if i % 4 == 1 else "")
        name = f"{'Emb' if i % 2 else 'emb'}-{(i * 37) % count:03d}"
        path = write_safetensors(folder / f"{name}.safetensors", {"emb_params": vectors(1 + i % 4, seed=i)})
        stamp = 1_700_000_000 + (i % 9) * 1000
        os.utime(path, (stamp, stamp))
    write_safetensors(root / ".hidden-one.safetensors", {"emb_params": vectors(1, seed=500)})
    write_safetensors(root / "<" / "script>odd.safetensors", {"emb_params": vectors(1, seed=501)})
    (root / "<" / "script>odd.txt").write_text(PWN, encoding="utf-8")
    write_safetensors(root / "sub" / f"{XSS}.safetensors", {"emb_params": vectors(1, seed=502)})
    library = Library([root], family=Family.SD1, background_hashing=False)
    library.refresh()
    return library


def wait_complete(tab) -> None:
    tab.page.wait_for_function("() => { const s = window.sdEmbeddings.states.get("
                               "document.querySelector('.sdemb-pane')); return s && s.doc && !s.partial; }")


@pytest.mark.parametrize("sort, direction", [("name", "asc"), ("name", "desc"), ("path", "asc"),
                                             ("mtime", "desc"), ("size", "asc"), ("vectors", "desc")])
def test_first_paint_equals_the_scripts_rendering_after_a_refresh(tmp_path, static_tab, sort, direction):
    library = many(tmp_path / "embeddings")
    tab = static_tab(library, hold_cards=True, sort=sort, sort_dir=direction)
    first = tab.snapshot()
    assert len(first["cards"]) == cards.FIRST_PAGE and first["tree"] and first["count"]
    assert [p for p in tab.requests if "/sd-embeddings/" in p] in ([], ["/sd-embeddings/v1/cards"])
    tab.release()
    wait_complete(tab)
    assert tab.snapshot() == first  # the full document changes nothing that was on screen
    tab.page.click("#txt2img_textual_inversion_extra_refresh")
    tab.page.wait_for_function("() => !document.querySelector('#txt2img_textual_inversion_extra_refresh').disabled")
    assert tab.snapshot() == first
    assert "/sd-embeddings/v1/refresh" in tab.requests
    assert tab.errors == [] and tab.dialogs == []


def test_a_small_library_paints_with_no_request_at_all(tmp_path, static_tab):
    library = Library([build(tmp_path / "embeddings")], family=Family.SD1, background_hashing=False)
    library.refresh()
    tab = static_tab(library, hold_cards=True, sort="mtime", sort_dir="desc")
    first = tab.snapshot()
    assert {p for p in tab.requests if not p.endswith("/preview")} == {"/"} and not tab.held  # only pictures
    assert first["count"] == "7 of 7" and "could not be used" in first["problems"]
    tab.release()
    tab.page.click("#txt2img_textual_inversion_extra_refresh")
    tab.page.wait_for_function("() => !document.querySelector('#txt2img_textual_inversion_extra_refresh').disabled")
    assert tab.snapshot() == first


def test_empty_library_first_paint_explains_where_to_put_files(tmp_path, static_tab):
    library = Library([tmp_path / "nothing"], background_hashing=False)
    library.refresh()
    tab = static_tab(library, hold_cards=True)
    text = tab.page.locator("#txt2img_textual_inversion_cards").inner_text()
    assert "No embeddings here yet" in text and "nothing" in text and tab.held == []
    assert str(tmp_path) not in text  # the folder's name, not the absolute path (SECURITY.md: page readers)


def test_hostile_names_and_descriptions_render_as_text(tmp_path, static_tab):
    library = many(tmp_path / "embeddings", count=4)
    tab = static_tab(library)
    page = tab.page
    assert page.locator(f'.sdemb-card[data-name="{XSS}"] .name').inner_text() == XSS
    odd = page.locator('.sdemb-card[data-name="script>odd"]')
    assert odd.locator(".description").inner_text() == PWN
    assert odd.get_attribute("title").startswith("</script>odd.safetensors")
    assert page.locator("img[src='x']").count() == 0 and page.locator("body script").count() == 1
    assert page.evaluate("window.__pwned") is None
    assert tab.errors == [] and tab.dialogs == []


def gradio6_morph(page) -> None:
    """What gradio 6's HTML component does when its value string changes: it patches the pane in place, so the
    element stays, our marker attribute goes and every child the script added is removed."""
    page.evaluate("""() => { const p = document.querySelector('.sdemb-pane');
        p.removeAttribute('data-sdemb-init');
        for (const sel of ['.sdemb-tree', '.sdemb-cards', '.sdemb-problems']) p.querySelector(sel).innerHTML = '';
        p.querySelector('.sdemb-count').textContent = '';
        p.querySelector('.sdemb-search').value = ''; }""")


def test_the_tab_survives_gradio_re_rendering_the_pane(tmp_path, static_tab):
    library = Library([build(tmp_path / "embeddings")], family=Family.SD1, background_hashing=False)
    library.refresh()
    tab = static_tab(library)
    page = tab.page
    page.fill("#txt2img_textual_inversion_extra_search", "fluffy")
    page.locator('.sdemb-card[data-name="cat"]').wait_for()
    gradio6_morph(page)
    page.wait_for_function("() => document.querySelector('.sdemb-count').textContent === '1 of 7'")
    assert page.locator(".sdemb-folder-row").count() == 5 and page.input_value(".sdemb-search") == "fluffy"
    # gradio 3 (the WebUI) replaces the whole block: a new pane element from the server's current shell
    write_safetensors(Path(library.folders[0]) / "later.safetensors", {"emb_params": vectors(1, seed=40)})
    library.refresh()
    page.evaluate("html => { document.querySelector('.sdemb-pane').outerHTML = html; }", shell.pane_html(library))
    page.wait_for_function("() => document.querySelector('.sdemb-count').textContent === '8 of 8'")
    assert page.locator('.sdemb-card[data-name="later"]').count() == 1
    page.locator('.sdemb-card[data-name="cat"]').click()
    assert page.input_value("#txt2img_prompt textarea") == "cat"  # delegated events reach the new pane
    assert page.locator(".sdemb-folder-row").count() == 5 and tab.errors == []


def test_first_load_on_the_host_shows_tree_and_count_without_interaction(tmp_path, host_factory, browser):
    root = build(tmp_path / "embeddings")
    write_safetensors(root / "xl" / "more" / "deeper.safetensors", sdxl_vectors(1, seed=30))
    host = host_factory(root)
    context = browser.new_context()
    try:
        page = context.new_page()
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url.partition("/sd-embeddings/v1")[2].partition("?")[0]))
        page.goto(host.url)
        page.wait_for_function("() => document.querySelector('.sdemb-count')?.textContent === '8 of 8'",
                               timeout=60_000)
        folders = page.locator(".sdemb-folder-btn").evaluate_all("els => els.map(e => e.dataset.folder)")
        assert folders == ["", "negative", "pictures", "sub", "xl", "xl/more"]
        assert "/cards" not in asked and "/refresh" not in asked
        doc = json.loads(page.locator("script.sdemb-doc").text_content())
        assert doc["complete"] and len(doc["cards"]) == 8
    finally:
        context.close()


def test_controls_the_webui_moved_into_its_tab_bar_stay_the_live_ones(tmp_path, static_tab):
    """A1111 1.8+ moves ``{tab}_textual_inversion_controls`` into its tab bar once, at start; a later re-render
    brings a second copy inside the pane. The moved controls keep working and the copy goes."""
    library = Library([build(tmp_path / "embeddings")], family=Family.SD1, background_hashing=False)
    library.refresh()
    tab = static_tab(library)
    page = tab.page
    page.evaluate("""() => { const bar = document.createElement('div'); bar.className = 'tab-nav';
        document.body.insertBefore(bar, document.querySelector('.sdemb-pane'));
        bar.appendChild(document.querySelector('#txt2img_textual_inversion_controls')); }""")
    page.fill("#txt2img_textual_inversion_extra_search", "fluffy")
    page.wait_for_function("() => document.querySelector('.tab-nav .sdemb-count').textContent === '1 of 7'")
    page.evaluate("html => { document.querySelector('.sdemb-pane').outerHTML = html; }", shell.pane_html(library))
    page.wait_for_function("() => document.querySelectorAll('.sdemb-card').length === 1")
    assert page.locator("[id=txt2img_textual_inversion_controls]").count() == 1
    page.fill(".tab-nav .sdemb-search", "")
    page.wait_for_function("() => document.querySelector('.tab-nav .sdemb-count').textContent === '7 of 7'")
    page.select_option(".tab-nav .sdemb-family", "SDXL")
    assert page.locator(".sdemb-card").evaluate_all("els => els.map(e => e.dataset.name)") == ["big-xl"]
    assert tab.errors == []


def test_an_inline_document_older_than_the_page_is_replaced_at_once(tmp_path, browser):
    """Gradio serves the pane as it was built when the server started until the page's load event lands: its
    inline document can miss files added since. A page that polls checks the version at once, not a tick later
    (here a tick is a minute)."""
    from static_tab import ORIGIN, StaticTab, page_html

    library = Library([tmp_path / "emb"], family=Family.SD1, background_hashing=False)
    write_safetensors(tmp_path / "emb" / "old.safetensors", {"emb_params": vectors(1, seed=1)})
    library.refresh()
    stale = page_html(library, watch_ms=60_000)
    write_safetensors(tmp_path / "emb" / "arrived.safetensors", {"emb_params": vectors(1, seed=2)})
    library.refresh()
    context = browser.new_context()
    try:
        page = context.new_page()
        tab = StaticTab(page, library, options={"watch_ms": 60_000})
        page.on("pageerror", lambda error: tab.errors.append(str(error)))
        page.route(f"{ORIGIN}/**", lambda route: route.fulfill(status=200, content_type="text/html", body=stale)
                   if route.request.url == f"{ORIGIN}/" else tab.answer(route))
        page.goto(f"{ORIGIN}/")
        page.wait_for_selector('.sdemb-card[data-name="arrived"]', timeout=20_000)
        assert tab.requests.count("/sd-embeddings/v1/version") == 1 and tab.errors == []
    finally:
        context.close()
