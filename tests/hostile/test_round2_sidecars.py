"""Round 2 of the outside attack, sidecar side (F3, F4): a stranger's ``x.json`` beside an embedding, and a damaged
scan cache. Whatever the sidecar holds (200,000-deep or 900-deep nesting, NaN, 1e400, lone surrogates, a
400-digit weight, too many values, a folder in its place), the page, ``/cards`` and ``GET``/``POST /metadata``
answer; the sidecar is ignored with one warning line or its bad values are dropped; a folder named ``x.json`` is
a 409 with a one-line reason. Every input is written here, at test time."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from factories import vectors, write_a1111_pt
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sd_embeddings.app import create_app
from sd_embeddings.formats.text import MAX_JSON_DEPTH
from sd_embeddings.library import Library
from sd_embeddings.library.hashing import HashCache
from sd_embeddings.tab import card_rows, guard, shell
from sd_embeddings.tab.routes import ROUTE_PREFIX, make_router

SIDECARS = {
    "deep": '{"description": ' + "[" * 200_000 + "]" * 200_000 + "}",
    "recursion": '{"description": ' + "[" * 5_000 + "]" * 5_000 + "}",  # under the counts, over json's own depth
    "medium_deep": '{"description": "kept", "notes": ' + "[" * 900 + "]" * 900 + "}",
    "nan": '{"description": "kept", "preferred weight": NaN, "x": [Infinity, 1]}',
    "inf": '{"description": "kept", "preferred weight": 1e400, "y": {"z": -1e999}}',
    "surrogate": '{"description": "a\\ud800b", "notes": "\\udc80", "\\udfff": 1}',
    "big_int": '{"description": "kept", "preferred weight": ' + "9" * 400 + "}",
    "many": '{"description": "kept", "n": [' + ",".join(["0"] * 60_000) + "]}",
    "not_utf8": b'{"description": "caf\xe9 \xff"}',
}


def depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def scanned(folder: Path) -> Library:
    library = Library([folder], background_hashing=False)
    library.refresh()
    return library


def client_for(library: Library) -> TestClient:
    app = FastAPI()
    app.include_router(make_router(lambda: library))
    return TestClient(app, headers={"origin": "http://testserver", guard.TOKEN_HEADER: guard.page_token()})


@pytest.fixture
def hostile(tmp_path: Path) -> Library:
    """One embedding per hostile sidecar, plus a good one with a good sidecar."""
    for name, text in SIDECARS.items():
        write_a1111_pt(tmp_path / f"{name}.pt", vectors(1))
        raw = text if isinstance(text, bytes) else text.encode()
        (tmp_path / f"{name}.json").write_bytes(raw)
    write_a1111_pt(tmp_path / "good.pt", vectors(2))
    (tmp_path / "good.json").write_text('{"description": "fine", "preferred weight": 0.8}', encoding="utf-8")
    return scanned(tmp_path)


def test_page_and_cards_are_built_whatever_the_sidecars_hold(hostile: Library) -> None:
    page = shell.pane_html(hostile)
    page.encode("utf-8")  # strict: a lone surrogate would fail here
    cards = client_for(hostile).get(f"{ROUTE_PREFIX}/cards")
    assert cards.status_code == 200
    rows = card_rows.expand(cards.json())
    by_keyword = {row["keyword"]: row for row in rows}
    assert set(by_keyword) >= set(SIDECARS) | {"good"}
    assert by_keyword["good"]["description"] == "fine" and by_keyword["surrogate"]["description"] == "a\ufffdb"


def test_standalone_page_starts_with_a_deep_sidecar(hostile: Library) -> None:
    assert TestClient(create_app(hostile)).get("/").status_code == 200


@pytest.mark.parametrize("name", sorted(SIDECARS))
def test_metadata_can_be_read_and_written_whatever_the_sidecar(hostile: Library, tmp_path: Path, name: str) -> None:
    client = client_for(hostile)
    read = client.get(f"{ROUTE_PREFIX}/metadata", params={"id": f"0/{name}.pt"})
    assert read.status_code == 200, read.text
    written = client.post(f"{ROUTE_PREFIX}/metadata", json={"id": f"0/{name}.pt", "notes": "mine"})
    assert written.status_code == 200, written.text
    on_disk = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))  # strict JSON, valid UTF-8
    assert on_disk["notes"] == "mine"


def test_bad_values_are_dropped_and_good_ones_kept(hostile: Library) -> None:
    meta = {name: hostile.user_metadata(hostile.get(name)) for name in SIDECARS}
    assert meta["deep"] == meta["recursion"] == meta["many"] == {}  # ignored whole: over the counts / json's depth
    assert meta["nan"] == {"description": "kept", "x": [1]}
    assert meta["inf"] == {"description": "kept", "y": {}}
    assert meta["surrogate"] == {"description": "a\ufffdb", "notes": "\ufffd", "\ufffd": 1}
    assert meta["medium_deep"]["description"] == "kept" and depth(meta["medium_deep"]) <= MAX_JSON_DEPTH
    assert meta["not_utf8"] == {"description": "caf\ufffd \ufffd"}


def test_an_ignored_sidecar_gets_one_line_naming_it(hostile: Library, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        hostile.user_metadata(hostile.get("deep"))
        hostile.user_metadata(hostile.get("many"))
        hostile.user_metadata(hostile.get("recursion"))
    lines = [r.getMessage() for r in caplog.records]
    assert any("deep.json" in line and "200,001 lists and objects" in line for line in lines), lines
    assert any("recursion.json" in line and "RecursionError" in line for line in lines), lines
    assert any("many.json" in line and "values" in line for line in lines), lines
    assert all("\n" not in line for line in lines)


def test_a_folder_named_like_the_sidecar_is_a_409(tmp_path: Path) -> None:
    write_a1111_pt(tmp_path / "emb.pt", vectors(1))
    (tmp_path / "emb.json").mkdir()
    library = scanned(tmp_path)
    client = client_for(library)
    assert client.get(f"{ROUTE_PREFIX}/metadata", params={"id": "0/emb.pt"}).status_code == 200
    answer = client.post(f"{ROUTE_PREFIX}/metadata", json={"id": "0/emb.pt", "notes": "x"})
    assert answer.status_code == 409 and "folder of that name is in the way" in answer.json()["detail"]
    assert (tmp_path / "emb.json").is_dir() and shell.pane_html(library)


def test_scan_cache_over_its_counts_is_ignored_before_parsing(tmp_path: Path, caplog) -> None:
    """700,000 empty records: under the size cap, over the container count (parsed, they would cost ~50 MB)."""
    cache = tmp_path / "hashes.json"
    cache.write_text('{"version": 3, "files": {"a": [' + "{}," * 700_000 + "{}]}}")
    with caplog.at_level(logging.WARNING):
        loaded = HashCache(cache)
    assert not loaded._items
    assert any("lists and objects" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_a_fifo_named_like_a_sidecar_is_refused_at_once(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes: the sidecar readers must refuse it instead. The
    read runs in a thread so a regression fails the test (60 s, far past any read) rather than hanging the suite."""
    import contextlib
    import os
    import threading

    write_a1111_pt(tmp_path / "emb.pt", vectors(1))
    os.mkfifo(tmp_path / "emb.txt")
    os.mkfifo(tmp_path / "emb.json")
    library = scanned(tmp_path)
    entry = library.get("emb")
    found: list[object] = []
    reader = threading.Thread(target=lambda: found.extend([library.user_metadata(entry), library.description(entry)]),
                              daemon=True)
    reader.start()
    reader.join(60)
    if reader.is_alive():  # unblock the stuck reader so the process can exit
        for name in ("emb.json", "emb.txt"):
            with contextlib.suppress(OSError), open(os.open(tmp_path / name, os.O_WRONLY | os.O_NONBLOCK), "wb"):
                pass
    assert found == [{}, ""]
