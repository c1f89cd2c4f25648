"""The cards document at scale (``tab/card_pages.py``, ``tab/card_rows.py``): work counted, never timed.

Rows are built once per library state however many requests come, at the same time or one after another; a page
builds only its rows; what the tab writes (metadata, Refresh) and hashes that arrive make a new build; rows repeat
no folder and no shared text. Real files, a real ``Library``, the real routes through FastAPI's test client.
"""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path

import pytest
from factories import vectors, write_safetensors
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sd_embeddings.library import Library
from sd_embeddings.records import Family
from sd_embeddings.tab import card_pages, card_rows, cards, first_page, guard, shell
from sd_embeddings.tab.routes import ROUTE_PREFIX, make_router

FOLDERS = ("pack-a/set-one", "pack-a/set-two", "pack-b", "")


def write_library(root: Path, count: int) -> Library:
    for i in range(count):
        folder = root / FOLDERS[i % len(FOLDERS)]
        write_safetensors(folder / f"emb-{i:03d}.safetensors", {"emb_params": vectors(1, seed=i)})
    library = Library([root], family=Family.SD1, background_hashing=False)
    library.refresh()
    return library


@pytest.fixture
def library(tmp_path: Path) -> Library:
    return write_library(tmp_path / "embeddings", 24)


def client_for(library: Library) -> TestClient:
    app = FastAPI()
    app.include_router(make_router(lambda: library))
    return TestClient(app, headers={"origin": "http://testserver", guard.TOKEN_HEADER: guard.page_token()})


def work() -> tuple[int, int]:
    return card_pages.WORK.builds, card_pages.WORK.rows


def test_repeated_requests_build_the_list_once(library: Library) -> None:
    client = client_for(library)
    builds, rows = work()
    first = client.get(f"{ROUTE_PREFIX}/cards").json()
    assert work() == (builds + 1, rows + 24)
    for _ in range(3):
        assert client.get(f"{ROUTE_PREFIX}/cards").json() == first
    assert work() == (builds + 1, rows + 24)  # nothing built again
    write_safetensors(Path(library.folders[0]) / "later.safetensors", {"emb_params": vectors(1, seed=99)})
    library.refresh()  # a new library version: one new build
    assert len(client.get(f"{ROUTE_PREFIX}/cards").json()["cards"]) == 25
    client.get(f"{ROUTE_PREFIX}/cards")
    assert work() == (builds + 2, rows + 24 + 25)


def test_concurrent_requests_share_one_build(library: Library, monkeypatch) -> None:
    """Four requests arrive while the first is building: the first row waits until all four have asked."""
    asked, everyone = [], threading.Event()
    original_snapshot, original_row = card_pages.snapshot, card_rows.RowWriter.row

    def counted_snapshot(*args, **kwargs):
        asked.append(1)
        if len(asked) == 4:
            everyone.set()
        return original_snapshot(*args, **kwargs)

    def slow_row(self, entry):
        everyone.wait(timeout=30)  # a safety net, not a measure: the others are waiting for the build by then
        return original_row(self, entry)

    monkeypatch.setattr(card_pages, "snapshot", counted_snapshot)
    monkeypatch.setattr(card_rows.RowWriter, "row", slow_row)
    builds, rows = work()
    answers: list[bytes] = []
    threads = [threading.Thread(target=lambda: answers.append(card_pages.answer(library).body)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(asked) == 4 and len(set(answers)) == 1
    assert work() == (builds + 1, rows + 24)


def test_pages_split_the_list_and_each_builds_only_its_rows(library: Library) -> None:
    builds, rows = work()
    head = json.loads(card_pages.answer(library, 0, size=10).body)
    assert (head["page"], head["pages"], head["total"], len(head["cards"])) == (0, 3, 24, 10)
    assert work() == (builds + 1, rows + 10)
    later = [json.loads(card_pages.answer(library, page, head["build"], size=10).body) for page in (1, 2)]
    assert [len(part["cards"]) for part in later] == [10, 4] and work() == (builds + 1, rows + 24)
    assert {part["version"] for part in later} == {head["version"]} and "folders" not in later[0]
    paged = [card for part in [head, *later] for card in card_rows.expand(part, head["folders"])]
    assert paged == card_rows.expand(cards.cards_payload(library))
    assert card_pages.answer(library, 3, head["build"], size=10).status == 404


def test_a_build_no_longer_held_is_refused_so_the_script_starts_again(library: Library) -> None:
    head = json.loads(card_pages.answer(library, 0, size=10).body)
    for _ in range(card_pages.KEEP):
        card_pages.changed(library)
        card_pages.answer(library, 0, size=10)
    stale = card_pages.answer(library, 1, head["build"], size=10)
    assert stale.status == 409 and "changed" in json.loads(stale.body)["detail"]


def test_what_the_tab_writes_and_refresh_are_in_the_next_list(library: Library) -> None:
    """The version counts files, not the text inside ``x.json``: the tab's writes and Refresh make a new build."""
    client = client_for(library)
    client.get(f"{ROUTE_PREFIX}/cards")
    saved = client.post(f"{ROUTE_PREFIX}/metadata", json={"id": "0/emb-003.safetensors", "description": "new words"})
    assert saved.status_code == 200
    described = {c["keyword"]: c["description"] for c in card_rows.expand(client.get(f"{ROUTE_PREFIX}/cards").json())}
    assert described["emb-003"] == "new words"
    (Path(library.folders[0]) / "emb-003.json").write_text('{"description": "edited by hand"}', encoding="utf-8")
    refreshed = client.post(f"{ROUTE_PREFIX}/refresh", json={}).json()
    assert {c["keyword"]: c["description"] for c in card_rows.expand(refreshed)}["emb-003"] == "edited by hand"


def test_hashes_show_once_known_and_a_running_pass_waits_for_its_end(library: Library) -> None:
    builds, _ = work()
    assert {c["shorthash"] for c in card_rows.expand(card_pages.whole_document(library))} == {""}
    library.hash_all()  # what the background pass does, file by file
    hashed = card_rows.expand(card_pages.whole_document(library))
    assert all(len(c["shorthash"]) == 12 for c in hashed) and work()[0] == builds + 2
    # while a pass runs (stood in for by its flags: the worker thread is not what is tested), each new hash
    # would otherwise make a new build per file; the pass's end makes one
    library.checks.background = True
    library.checks.idle.clear()
    library.record_fingerprint(library.entries[0], "f" * 64)
    card_pages.whole_document(library)
    assert work()[0] == builds + 2
    library.checks.idle.set()
    card_pages.whole_document(library)
    card_pages.whole_document(library)
    assert work()[0] == builds + 3


def test_rows_repeat_no_folder_and_no_shared_text(tmp_path: Path) -> None:
    root = tmp_path / "embeddings"
    for i in range(40):
        write_safetensors(root / "a-long-pack-name/with-a-set-inside" / f"e{i:02d}.safetensors",
                          {"emb_params": vectors(1, seed=i)})
    library = Library([root], family=Family.SD1, background_hashing=False)
    library.refresh()
    text = card_pages.answer(library).body.decode("utf-8")
    assert text.count("with-a-set-inside") == 1 and text.count('"loaded"') == 1 and text.count('"SD1"') == 1
    assert text.count("e07") == 1  # the keyword is the file's stem: written once, as the file name
    for row in json.loads(text)["cards"]:  # the file name and about sixty bytes of numbers (was 250 and more)
        assert len(json.dumps(row, separators=(",", ":"))) <= len("e00.safetensors") + 60


def test_gzip_for_clients_that_ask(library: Library) -> None:
    client = client_for(library)
    plain = client.get(f"{ROUTE_PREFIX}/cards", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    zipped = client.get(f"{ROUTE_PREFIX}/cards", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "Accept-Encoding"
    assert zipped.json() == plain.json()  # the client decompressed it
    answer = card_pages.answer(library, gzip_ok=True)
    assert json.loads(gzip.decompress(answer.body)) == plain.json()


def test_the_first_screen_is_built_once_per_build_and_stays_small(tmp_path: Path) -> None:
    small = write_library(tmp_path / "small", 100)
    large = write_library(tmp_path / "large", 300)
    builds, rows = work()
    for _ in range(3):
        shell.pane_html(large)
    assert work() == (builds + 1, rows + cards.FIRST_PAGE)
    sizes = [len(json.dumps(first_page.first_page_payload(lib))) for lib in (small, large)]
    assert sizes[1] - sizes[0] < 40  # three times the cards, the same first screen (only its numbers grow)
