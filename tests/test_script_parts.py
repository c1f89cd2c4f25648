"""The tab's script is one classic script in several files: the WebUI loads every ``javascript/*.js`` of an extension
in alphabetical order (``sorted(os.listdir(...))`` in ``extensions.Extension.list_files``), the standalone host
inlines ``shell.SCRIPTS``. Both must run the same files in the same order, and the part that attaches the panes must
run last, after the others defined what it calls."""

from __future__ import annotations

import os
from pathlib import Path

from sd_embeddings import app
from sd_embeddings.tab import shell

ROOT = Path(__file__).resolve().parent.parent


def test_the_host_runs_the_files_the_webui_loads_in_the_webuis_order():
    webui_order = [f"javascript/{name}" for name in sorted(os.listdir(ROOT / "javascript")) if name.endswith(".js")]
    assert list(shell.SCRIPTS) == webui_order


def test_the_host_page_inlines_every_part_in_order():
    head = app.head_html()
    starts = [head.index((ROOT / name).read_text(encoding="utf-8")) for name in shell.SCRIPTS]
    assert starts == sorted(starts)


def test_only_the_last_part_starts_the_tab():
    texts = [(ROOT / name).read_text(encoding="utf-8") for name in shell.SCRIPTS]
    assert [("NS.ready = true" in text) for text in texts] == [False] * (len(texts) - 1) + [True]
    assert all("if (NS.ready) return;" in text for text in texts)  # a second load of any part is a no-op


def test_every_part_is_small():
    sizes = {name: len((ROOT / name).read_text(encoding="utf-8").splitlines()) for name in shell.SCRIPTS}
    assert max(sizes.values()) <= 300, sizes
