"""The tab's page shell: the WebUI's element ids, empty containers, and the first cards document inline.

``pane_html(library, tabname="txt2img", api=API_PREFIX, watch_ms=0, auto_negative=True, hidden_models=...,
sort="name", sort_dir="asc") -> str`` is the whole tab as the server sends it: the controls with the WebUI ids
``{T}_extra_search``, ``{T}_extra_sort``, ``{T}_extra_sort_dir``, ``{T}_extra_refresh``, the cards container
``{T}_cards``, the folder tree ``{T}_tree`` and the problems list ``{T}_problems``
(``T = f"{tabname}_textual_inversion"``), all empty, plus ``first_page.first_page_payload`` in a
``<script type="application/json" class="sdemb-doc">``.
The script (``SCRIPTS``, in this order) draws every card, the tree, the count, the empty state and the problems
from that document, so the first paint needs no request and there is no second (Python) card renderer.
``watch_ms`` > 0 makes the script poll for changes.

The inline JSON escapes ``<``, ``>`` and ``&`` (as ``\\u003c`` ...), so no name, description or path can close
the script element or start markup; everything else is attribute-escaped.
"""

from __future__ import annotations

import html
import json

from ..library import Library
from . import cards, first_page

SCRIPTS = ("javascript/sd_embeddings_1_prompt.js", "javascript/sd_embeddings_2_render.js",
           "javascript/sd_embeddings_3_dialog.js", "javascript/sd_embeddings_3_inspector.js",
           "javascript/sd_embeddings_3b_groups.js",
           "javascript/sd_embeddings_4_events.js")
"""The tab's one classic script in its parts, relative to the repository root, in the order they must run: the
WebUI loads an extension's ``javascript/*.js`` in alphabetical order, so this is that order (a test checks it) and
the standalone host inlines them the same way."""
FAMILIES = (("", "All models"), ("usable", "Usable now"), ("SD1", "SD1"), ("SD2", "SD2"), ("SDXL", "SDXL"))
_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def _attr(value: object) -> str:
    return html.escape(str(value), quote=True)


def inline_json(document: dict) -> str:
    """``document`` as JSON that is safe as the text of a ``<script>`` element (no ``<``, ``>`` or ``&``)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).translate(_JSON_ESCAPES)


def _controls(t: str, sort: str, descending: bool) -> str:
    sorts = "".join(f'<option value="{key}"{" selected" if key == sort else ""}>{label}</option>'
                    for key, label in cards.SORTS)
    families = "".join(f'<option value="{key}">{label}</option>' for key, label in FAMILIES)
    return (
        f'<div id="{t}_controls" class="sdemb-controls">'
        f'<input type="search" id="{t}_extra_search" class="sdemb-search" placeholder="Search keyword, folder, '
        f'description" aria-label="Search embeddings">'
        f'<select id="{t}_extra_sort" class="sdemb-sort" aria-label="Sort by">{sorts}</select>'
        f'<button type="button" id="{t}_extra_sort_dir" class="sdemb-sort-dir" '
        f'data-sortdir="{"Descending" if descending else "Ascending"}" data-dir="{"desc" if descending else "asc"}" '
        f'title="Ascending / descending">{"&#8595;" if descending else "&#8593;"}</button>'
        f'<select id="{t}_extra_family" class="sdemb-family" aria-label="Model family">{families}</select>'
        f'<button type="button" id="{t}_extra_tree_view" class="sdemb-tree-toggle" title="Show or hide folders">'
        f'Folders</button>'
        f'<button type="button" id="{t}_extra_refresh" class="sdemb-refresh" title="Rescan the folders">'
        f'Refresh</button><span class="sdemb-count" aria-live="polite"></span></div>')


def pane_html(library: Library, tabname: str = "txt2img", api: str = cards.API_PREFIX, watch_ms: int = 0,
              auto_negative: bool = True, hidden_models: str = cards.HIDDEN_DEFAULT, sort: str = "name",
              sort_dir: str = "asc", token_html: str = "") -> str:
    """The whole tab as the server sends it (see the module docstring); ``token_html`` goes in unchanged."""
    t = f"{tabname}_textual_inversion"
    hidden_models = hidden_models if hidden_models in cards.HIDDEN_MODES else cards.HIDDEN_DEFAULT
    sort = sort if sort in cards.SORT_KEYS else "name"
    sort_dir = "desc" if sort_dir == "desc" else "asc"
    doc = first_page.first_page_payload(library, api, auto_negative, hidden_models, sort, sort_dir)
    return (
        f'<div id="{t}_pane" class="sdemb-pane" data-tab="{_attr(tabname)}" data-t="{t}" data-api="{_attr(api)}" '
        f'data-watch="{int(watch_ms)}" data-hidden-models="{_attr(hidden_models)}">{token_html}'
        f'{_controls(t, sort, sort_dir == "desc")}'
        f'<div class="sdemb-body"><nav id="{t}_tree" class="sdemb-tree" aria-label="Folders"></nav>'
        f'<div id="{t}_cards" class="extra-network-cards sdemb-cards"></div></div>'
        f'<div id="{t}_problems" class="sdemb-problems"></div>'
        f'<script type="application/json" class="sdemb-doc">{inline_json(doc)}</script></div>')
