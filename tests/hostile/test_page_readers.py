"""What any reader of the page learns, and what pasted text can show: the tab's GET answers and the page itself name
the embeddings folders by relative labels, never by absolute paths (which name the account and the disk layout);
the paste warning shows a stranger's names as text, never as markup or terminal controls. Real library files,
our router on a FastAPI app; gradio's ``Warning`` is recorded (no gradio event runs here)."""

from __future__ import annotations

import json
import sys
import types

import pytest
from factories import vectors, write_a1111_pt, write_image, write_safetensors
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sd_embeddings.library import Library
from sd_embeddings.records import Family
from sd_embeddings.tab import card_rows, cards, shell
from sd_embeddings.tab.routes import make_router
from sd_embeddings.webui import paste

V1 = "/sd-embeddings/v1"


@pytest.fixture
def library(tmp_path) -> Library:
    first, second = tmp_path / "webui" / "embeddings", tmp_path / "extra" / "embeddings"
    write_a1111_pt(first / "neg" / "bad-hands-5.pt", vectors(2))
    write_image(first / "cat.png", vectors(3, seed=2), "bad -hands-5")  # a duplicate naming the winner
    (first / "evil.pt").write_bytes(b"\x80\x02cos\nsystem\nq\x00.")  # unsafe: a reason
    write_safetensors(second / "goodemb.safetensors", {"emb_params": vectors(1)})
    (second / "goodemb.txt").write_text("a description", encoding="utf-8")
    library = Library([first, second], family=Family.SD1, background_hashing=False)
    library.refresh()
    return library


def test_no_answer_names_an_absolute_path(tmp_path, library):
    app = FastAPI()
    app.include_router(make_router(lambda: library))
    with TestClient(app) as client:
        doc = client.get(f"{V1}/cards").json()
        ids = [card["card_id"] for card in card_rows.expand(doc)]
        answers = [json.dumps(doc), client.get(f"{V1}/version").text, client.get(f"{V1}/groups").text]
        answers += [client.get(f"{V1}/metadata", params={"id": card_id}).text for card_id in ids]
    assert doc["roots"] == ["webui/embeddings", "extra/embeddings"]
    page = shell.pane_html(library)
    for text in [*answers, page]:
        assert str(tmp_path) not in text and str(tmp_path.parent) not in text


def test_labels_tell_folders_apart_with_as_few_parents_as_it_takes():
    assert cards.root_labels(["/home/ann/webui/embeddings"]) == ["embeddings"]
    assert cards.root_labels(["/a/x/emb", "/b/y/emb", "/c/neg"]) == ["x/emb", "y/emb", "c/neg"]


@pytest.mark.parametrize("version, markup_shown_as", [("4.40.0", "&lt;img"), ("6.31.0", "&lt;img"),
                                                      ("3.41.2", "<img")])
def test_the_paste_warning_shows_pasted_names_as_text(library, monkeypatch, version, markup_shown_as):
    """gradio 4+ renders a toast as HTML (escaped there); 3.41 renders text (left as typed)."""
    toasts: list[str] = []
    monkeypatch.setitem(sys.modules, "gradio", types.SimpleNamespace(Warning=toasts.append, __version__=version))
    hostile = "<img src=x onerror=alert(1)>\x1b]0;title\x07"
    paste.on_infotext_pasted(library, {"Prompt": "x", "TI hashes": f'"{hostile}: 0123456789ab"'})
    (toast,) = toasts
    assert markup_shown_as + " src=x onerror=alert(1)" in toast
    assert "\x1b" not in toast and "\x07" not in toast and "\\x1b]0;title\\x07" in toast
    if version >= "4":
        assert "<" not in toast
