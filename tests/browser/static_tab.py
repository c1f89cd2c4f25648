"""The tab in Chromium without a host process: the real shell, script and style, JSON answered from a real Library.

``open_static(context, library, hold_cards=False, **shell_options) -> StaticTab`` loads a page from the routed
origin ``http://sdemb.test/``: two prompt boxes with the WebUI's ids, then ``shell.pane_html(library, ...)``, with
``style.css`` and the script's parts (``shell.SCRIPTS``) inline as the hosts serve them. Stand-in (the only one): the
HTTP server. Playwright's request routing answers the tab's routes from the same ``Library`` through the same
functions the real routes call (``card_pages.answer``, ``Library.refresh``, ``Library.version``); no gradio, so
a test takes about a second. ``hold_cards=True`` keeps every ``/cards`` request pending until ``release()``, so a
test can look at the first paint before the full document arrives. ``requests`` lists every path the page asked for
(``urls``: with their queries); ``page_size`` sets the cards per page of ``/cards`` (``card_pages.PAGE``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sd_embeddings.library import Library
from sd_embeddings.tab import card_pages, cards, shell

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "http://sdemb.test"
SNAPSHOT = """() => { const p = document.querySelector('.sdemb-pane');
  return { cards: [...p.querySelectorAll('.sdemb-cards > .sdemb-card')].slice(0, FIRST).map(c => c.outerHTML),
           tree: p.querySelector('.sdemb-tree').innerHTML, count: p.querySelector('.sdemb-count').textContent,
           problems: p.querySelector('.sdemb-problems').innerHTML,
           empty: (p.querySelector('.sdemb-empty') || {}).outerHTML || '' };
}""".replace("FIRST", str(cards.FIRST_PAGE))


def page_html(library: Library, **options: object) -> str:
    style = (ROOT / "style.css").read_text(encoding="utf-8")
    scripts = "".join(f"<script>{(ROOT / name).read_text(encoding='utf-8')}</script>" for name in shell.SCRIPTS)
    return (f"<!doctype html><html><head><meta charset='utf-8'><style>{style}</style>{scripts}"
            "</head><body><div id='txt2img_prompt'><textarea rows='3' cols='60'></textarea></div>"
            "<div id='txt2img_neg_prompt'><textarea rows='2' cols='60'></textarea></div>"
            f"{shell.pane_html(library, **options)}</body></html>")


@dataclass
class StaticTab:
    page: object
    library: Library
    hold_cards: bool = False
    options: dict = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    page_size: int | None = None
    held: list = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def answer(self, route) -> None:
        path = urlsplit(route.request.url).path
        self.requests.append(path)
        self.urls.append(route.request.url)
        if path == "/":
            return route.fulfill(status=200, content_type="text/html; charset=utf-8", body=page_html(self.library,
                                                                                                       **self.options))
        if path.endswith("/cards") and self.hold_cards:
            return self.held.append(route)
        if path.endswith("/refresh"):
            self.library.refresh()
            card_pages.changed(self.library)
        if path.endswith(("/cards", "/refresh")):
            return self.answer_cards(route)
        if path.endswith("/version"):
            return route.fulfill(status=200, content_type="application/json",
                                 body=json.dumps({"version": self.library.version}))
        return route.fulfill(status=404, body="")

    def answer_cards(self, route) -> None:
        """As the route does: ``card_pages.answer`` for the query's ``page`` and ``build``."""
        query = parse_qs(urlsplit(route.request.url).query)
        page = int(query.get("page", ["0"])[0])
        build = int(query["build"][0]) if "build" in query else None
        found = card_pages.answer(self.library, page, build, size=self.page_size)
        route.fulfill(status=found.status, content_type="application/json", body=found.body)

    def release(self) -> None:
        """Answer the held ``/cards`` requests, and every later one at once."""
        self.hold_cards = False
        while self.held:
            self.answer_cards(self.held.pop(0))

    def snapshot(self) -> dict:
        """The first page of cards (outer HTML), the tree, the count, the problems and the empty state."""
        return self.page.evaluate(SNAPSHOT)

    def state(self, expression: str) -> object:
        return self.page.evaluate("() => { const s = window.sdEmbeddings.states.get("
                                  f"document.querySelector('.sdemb-pane')); return {expression}; }}")


def open_static(context, library: Library, hold_cards: bool = False, page_size: int | None = None,
                **options: object) -> StaticTab:
    page = context.new_page()
    tab = StaticTab(page, library, hold_cards, dict(options), page_size=page_size)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    page.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    page.route(f"{ORIGIN}/**", tab.answer)
    page.goto(f"{ORIGIN}/")
    page.wait_for_selector(".sdemb-pane[data-sdemb-init]")
    return tab
