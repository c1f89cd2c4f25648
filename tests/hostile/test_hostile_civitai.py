"""A stranger's Civitai sidecars (``x.civitai.info``, ``x.api_info.json``): whatever they hold (200,000-deep or
5,000-deep nesting, 3 MB, not JSON, a list, markup, control and bidi characters, a 100,000-word trigger list,
numbers where text belongs, a FIFO, a folder, a link out of the folder), the page, ``/cards`` and ``/metadata``
answer; a sidecar that cannot be used is ignored with one warning line and its reason shown in the dialog; values
are plain text of bounded length; nothing from them is rendered as markup (the browser test checks the page)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from factories import vectors, write_a1111_pt
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sd_embeddings.library import Library, civitai
from sd_embeddings.tab import card_rows, cards, shell
from sd_embeddings.tab.routes import ROUTE_PREFIX, make_router

GOOD = {"baseModel": "Pony", "trainedWords": ["ok"], "model": {"name": "fine"}}
SIDECARS: dict[str, bytes] = {
    "deep": ('{"baseModel": ' + "[" * 200_000 + "]" * 200_000 + "}").encode(),
    "recursion": ('{"baseModel": "x", "images": ' + "[" * 5_000 + "]" * 5_000 + "}").encode(),
    "huge": ('{"baseModel": "SD 1.5", "description": "' + "a" * 3_000_000 + '"}').encode(),
    "not_json": b"<html><script>alert(1)</script></html>",
    "a_list": b'[{"baseModel": "SD 1.5"}]',
    "markup": json.dumps({"baseModel": "<img src=x onerror=alert(1)>", "description": "<script>alert(2)</script>ok",
                          "trainedWords": ["<b>bold</b>"]}).encode(),
    "controls": json.dumps({"baseModel": "SD\x1b[31m 1.5\u202e\u2066" + "x" * 500, "trainedWords": "a,\x00b"}).encode(),
    "many_words": json.dumps({"baseModel": "SDXL 1.0", "trainedWords": [f"w{i}" for i in range(100_000)]}).encode(),
    "wrong_types": json.dumps({"baseModel": {"x": 1}, "trainedWords": 7, "model": "name", "images": "many",
                               "modelVersions": "v1"}).encode(),
    "nan": b'{"baseModel": NaN, "trainedWords": [Infinity, "kept"], "description": "\\ud800x"}',
    "not_utf8": b'{"baseModel": "caf\xe9 \xff"}',
}


def scanned(folder: Path) -> Library:
    library = Library([folder], background_hashing=False)
    library.refresh()
    return library


@pytest.fixture
def hostile(tmp_path: Path) -> Library:
    for name, raw in SIDECARS.items():
        write_a1111_pt(tmp_path / f"{name}.pt", vectors(1))
        (tmp_path / f"{name}.civitai.info").write_bytes(raw)
    write_a1111_pt(tmp_path / "good.pt", vectors(1))
    (tmp_path / "good.civitai.info").write_text(json.dumps(GOOD))
    return scanned(tmp_path)


def client_for(library: Library) -> TestClient:
    app = FastAPI()
    app.include_router(make_router(lambda: library))
    return TestClient(app)


def summaries(library: Library) -> dict[str, civitai.CivitaiSummary]:
    return {e.keyword: library.civitai_summary(e) for e in library.entries}


def test_the_page_cards_and_dialog_answer_whatever_the_sidecars_hold(hostile: Library) -> None:
    shell.pane_html(hostile).encode("utf-8")  # strict: a lone surrogate would fail here
    client = client_for(hostile)
    answer = client.get(f"{ROUTE_PREFIX}/cards")
    assert answer.status_code == 200
    rows = {card["keyword"]: card for card in card_rows.expand(answer.json())}
    assert set(rows) == set(SIDECARS) | {"good"} and rows["good"]["base_model"] == "Pony"
    for name in [*SIDECARS, "good"]:
        read = client.get(f"{ROUTE_PREFIX}/metadata", params={"id": f"0/{name}.pt"})
        assert read.status_code == 200, (name, read.text)


def test_unusable_sidecars_are_ignored_with_their_reason(hostile: Library) -> None:
    found = summaries(hostile)
    expected = {"deep": "200,001 lists and objects", "recursion": "RecursionError", "huge": "bytes",
                "not_json": "JSONDecodeError", "a_list": "not a JSON object"}
    for name, words in expected.items():
        assert found[name].base_model == "" and found[name].sources == (), name
        (problem,) = found[name].problems
        assert problem.startswith(f"{name}.civitai.info: ") and words in problem, problem
        assert "\n" not in problem


def test_values_are_plain_bounded_text(hostile: Library) -> None:
    found = summaries(hostile)
    assert found["markup"].base_model == "<img src=x onerror=alert(1)>"[: civitai.LABEL_LIMIT]  # text; escaped later
    assert found["markup"].description == "ok" and found["markup"].trigger_words == ("<b>bold</b>",)
    controls = found["controls"].base_model
    assert controls.startswith("SD [31m 1.5") and len(controls) <= civitai.LABEL_LIMIT
    assert not any(ch in controls for ch in "\x1b\u202e\u2066")
    assert found["controls"].trigger_words == ("a", "b")
    assert len(found["many_words"].trigger_words) == civitai.TRIGGER_LIMIT
    assert found["wrong_types"] == civitai.CivitaiSummary(sources=("wrong_types.civitai.info",))
    assert found["nan"].trigger_words == ("kept",) and found["nan"].base_model == ""
    assert found["not_utf8"].base_model == "caf\ufffd \ufffd"


def test_an_ignored_sidecar_gets_one_line_once(hostile: Library, caplog) -> None:
    civitai._cache.items.clear()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            cards.cards_payload(hostile)
    lines = [r.getMessage() for r in caplog.records if "Civitai sidecar" in r.getMessage()]
    assert len([line for line in lines if "deep.civitai.info" in line]) == 1, lines
    assert len(lines) == 5 and all("\n" not in line for line in lines)


def test_a_fifo_a_folder_and_a_link_out_are_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text(json.dumps({"baseModel": "LEAKED"}))
    folder = tmp_path / "emb"
    for name in ("fifo", "folder", "link"):
        write_a1111_pt(folder / f"{name}.pt", vectors(1))
    os.mkfifo(folder / "fifo.civitai.info")
    (folder / "folder.civitai.info").mkdir()
    (folder / "link.civitai.info").symlink_to(outside / "secret.json")
    library = scanned(folder)
    found = summaries(library)  # returns at once: a FIFO would block a plain open() for ever
    assert "not a regular file" in found["fifo"].problems[0]
    assert found["folder"].problems and found["folder"].base_model == ""
    assert found["link"] == civitai.CivitaiSummary()  # never read through
    assert client_for(library).get(f"{ROUTE_PREFIX}/cards").status_code == 200
