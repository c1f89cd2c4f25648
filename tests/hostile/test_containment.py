"""Containment (issue 10, attack round 3: findings 1, 7, 11, 12): what we open, read or write under an embeddings
folder stays inside its real path; links inside are followed, links out are listed with a reason and never read.

Opens are observed with a Python audit hook (every ``open``/``os.open`` of the process while a block runs), so a
test proves which files were touched, not only what an answer held. Walks are bounded by counts (folders, names).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import vectors, write_a1111_pt, write_safetensors
from fastapi import FastAPI
from hostile_kit import TALLY
from starlette.testclient import TestClient

from sd_embeddings import Library
from sd_embeddings.errors import WriteError
from sd_embeddings.formats import decoding as formats
from sd_embeddings.library import scanning
from sd_embeddings.library.containment import LINK_OUT, SYSTEM_REASON, OutsideError, Root
from sd_embeddings.records import Status
from sd_embeddings.tab import cards, guard
from sd_embeddings.tab import routes as http_routes

P = http_routes.ROUTE_PREFIX
WRITE = {"content-type": "application/json", "origin": "http://testserver", guard.TOKEN_HEADER: guard.page_token()}
_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes)):
        path = os.fsdecode(args[0])
        if isinstance(args[2], int) and args[2] & os.O_NOFOLLOW:  # a final link is not followed (ELOOP)
            reached = None if os.path.islink(path) else os.path.join(os.path.realpath(os.path.dirname(path)),
                                                                      os.path.basename(path))
        else:
            reached = os.path.realpath(path)
        if reached is not None:
            _OPENED.append(reached)


sys.addaudithook(_audit)


@contextlib.contextmanager
def opened_paths() -> Iterator[list[str]]:
    """The real path of every file this process opens inside the block (``open``, ``os.open``); an open with
    ``O_NOFOLLOW`` of a link is left out (it fails without touching the target)."""
    global _OPENED
    _OPENED = seen = []
    try:
        yield seen
    finally:
        _OPENED = None


def client(library: Library) -> TestClient:
    app = FastAPI()
    app.include_router(http_routes.make_router(lambda: library))
    return TestClient(app)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    place = tmp_path / "outside"
    place.mkdir()
    (place / "secret.txt").write_text("SECRET-TXT")
    (place / "secret.json").write_text('{"description": "SECRET-JSON", "notes": "SECRET-JSON"}')
    write_a1111_pt(place / "far.pt", vectors(1, seed=9))
    return place


def test_sidecar_and_entry_links_out_are_never_opened(tmp_path: Path, outside: Path) -> None:
    """Finding 1: ``x.pt`` and ``x.txt``/``x.json``/``x.civitai.info`` linked out (to /proc/self/environ, to a
    secret beside a far embedding) never reach /metadata, /cards or the library, and are never even opened; a
    sidecar link that stays inside the folder is read."""
    root = tmp_path / "embeddings"
    write_a1111_pt(root / "good.pt", vectors(2))
    os.symlink(outside / "secret.txt", root / "good.txt")
    os.symlink(outside / "secret.json", root / "good.json")
    (outside / "secret.civitai.info").write_text('{"description": "SECRET-CIVITAI", "name": "SECRET-CIVITAI"}')
    os.symlink(outside / "secret.civitai.info", root / "good.civitai.info")
    os.symlink("/proc/self/cmdline", root / "leak.pt")
    os.symlink("/proc/self/environ", root / "leak.txt")
    os.symlink(outside / "far.pt", root / "far.pt")
    os.symlink(outside / "secret.txt", root / "far.txt")
    write_a1111_pt(root / "inner.pt", vectors(1, seed=3))
    (root / "notes").mkdir()
    (root / "notes" / "shared.txt").write_text("shared inside")
    os.symlink(root / "notes" / "shared.txt", root / "inner.txt")
    library = Library([root], background_hashing=False)
    with opened_paths() as seen:
        library.refresh()
        for entry in library.entries:
            library.verify(entry)
        site = client(library)
        answers = [site.get(f"{P}/cards").text] + [
            site.get(f"{P}/metadata", params={"id": cards.card_id(library, e)}).text for e in library.entries]
    TALLY["inputs"] += 1
    assert not any("SECRET" in text or "PATH=" in text for text in answers)
    reals = set(seen)
    assert not {str(outside / n) for n in ("secret.txt", "secret.json", "secret.civitai.info", "far.pt")} & reals
    assert not [real for real in reals if real.startswith("/proc/") and real.endswith(("/environ", "/cmdline"))]
    status = {Path(e.path).name: (e.status, e.reason) for e in library.entries}
    assert status["far.pt"] == (Status.UNSUPPORTED, LINK_OUT)
    assert status["leak.pt"] == (Status.UNSUPPORTED, SYSTEM_REASON)
    assert status["good.pt"][0] is Status.LOADED
    assert library.description(library.get("inner")) == "shared inside"
    assert library.description(library.get("good")) == "" and library.user_metadata(library.get("good")) == {}


def test_a_folder_link_to_the_file_system_root_is_not_walked(tmp_path: Path, outside: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 7: ``x -> /`` and ``y -> <elsewhere>`` are listed as skipped (with the reason) and not walked; a
    folder link inside the folder is followed, once. Work is counted in folders walked."""
    monkeypatch.setattr(scanning, "MAX_FOLDERS", 200)  # a regression then stops after 200 folders, not hours
    root = tmp_path / "embeddings"
    write_a1111_pt(root / "sub" / "deep.pt", vectors(1, seed=4))
    os.symlink("/", root / "x")
    os.symlink(outside, root / "y")
    os.symlink(root / "sub", root / "again")
    library = Library([root], background_hashing=False)
    report = library.refresh()
    TALLY["inputs"] += 1
    assert sorted(e.relpath for e in library.entries) == ["sub/deep.pt"]
    assert sorted((s.relpath, s.reason) for s in library.skipped) == [("x", LINK_OUT), ("y", LINK_OUT)]
    assert len(library.scanned_folders()) == 2 and len(report.loops) == 1  # root and sub (again = sub)
    rows = {row["relpath"]: row for row in cards.problem_rows(library)}
    assert rows["x/"]["status"] == "skipped" and rows["x/"]["reason"] == LINK_OUT


def test_a_scan_stops_at_its_caps_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """However the folders are made (deep trees, folders of millions of names), a scan walks at most
    ``MAX_FOLDERS`` folders and lists at most ``MAX_NAMES`` names, and says where it stopped."""
    root = tmp_path / "embeddings"
    deep = root
    for level in range(30):
        deep = deep / f"d{level}"
    deep.mkdir(parents=True)
    write_a1111_pt(deep / "bottom.pt", vectors(1))
    monkeypatch.setattr(scanning, "MAX_FOLDERS", 10)
    walk = scanning.walk_folders([str(root)])
    assert len(walk.stamps) == 10 and not walk.found
    assert len(walk.skipped) == 1 and "stops after 10 folders" in walk.skipped[0].reason
    monkeypatch.setattr(scanning, "MAX_FOLDERS", 1000)
    monkeypatch.setattr(scanning, "MAX_NAMES", 20)
    for index in range(50):
        (root / f"n{index}.txt").write_text("x")
    walk = scanning.walk_folders([str(root)])
    assert len(walk.stamps) == 1 and walk.names_left == 0 and len(walk.skipped) == 1


def test_system_folders_are_never_read(tmp_path: Path) -> None:
    """/proc, /sys and /dev are outside every embeddings folder, even one configured as ``/``."""
    everything = Root.of("/")
    assert everything.holds(str(tmp_path)) and not everything.holds("/proc/self/environ")
    assert not everything.holds("/dev/zero") and not everything.holds("/sys/kernel")
    with pytest.raises(OutsideError):
        everything.open("/proc/self/environ")
    library = Library(["/proc/self"], background_hashing=False)
    library.refresh()
    assert not library.entries and [s.reason for s in library.skipped] == [SYSTEM_REASON]


def test_open_checks_the_file_it_really_opened(tmp_path: Path, outside: Path) -> None:
    """A link out in the middle of a path is not stopped by ``O_NOFOLLOW`` (only the last part is); the real path
    of the descriptor is checked after the open. A FIFO or device answers at once instead of blocking."""
    root = tmp_path / "embeddings"
    root.mkdir()
    os.symlink(outside, root / "sub")
    place = Root.of(root)
    with pytest.raises(OutsideError):
        place.open(str(root / "sub" / "far.pt"))
    with pytest.raises(OutsideError):
        place.open(str(root / "sub"), folder=True)
    os.mkfifo(root / "pipe.pt")
    os.symlink("/dev/zero", root / "zero.pt")
    outcomes: list[str] = []

    def attempt() -> None:
        for name in ("pipe.pt", "zero.pt"):
            try:
                place.open(str(root / name))
                outcomes.append("opened")
            except OSError as e:
                outcomes.append(type(e).__name__)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(30)  # a hang guard, not a timing bound: a blocking open never finishes
    assert outcomes == ["OSError", "OutsideError"]


def test_a_scan_reads_each_file_through_one_open(tmp_path: Path) -> None:
    """Finding 12: a safetensors header longer than the first read and a pickle longer than it are read on from
    the descriptor already open, never opened again by name (a FIFO or another file swapped in between would be
    what the second open met)."""
    root = tmp_path / "embeddings"
    write_safetensors(root / "long.safetensors", {"emb_params": vectors(1)}, {"pad": "x" * 1_300_000})
    write_a1111_pt(root / "wide.pt", vectors(700, 768, seed=3))
    library = Library([root], background_hashing=False)
    with opened_paths() as seen:
        library.refresh()
    for name in ("long.safetensors", "wide.pt"):
        assert (root / name).stat().st_size > formats.SCAN_READ_BYTES
        assert seen.count(str(root / name)) == 1, (name, seen)
    assert library.get("long").vectors == 1 and library.get("wide").vectors == 700
    # the descriptor keeps reading the file that was measured, whatever the name now holds
    with (root / "long.safetensors").open("rb") as handle:
        (root / "long.safetensors").unlink()
        write_safetensors(root / "long.safetensors", {"emb_params": vectors(3)})
        assert formats.scan_open(handle, str(root / "long.safetensors")).shape.vectors == 1


def test_metadata_and_preview_writes_through_a_folder_swapped_out_are_refused(tmp_path: Path, outside: Path) -> None:
    """Finding 11: an entry scanned in a real sub-folder that is then replaced by a link out gets no ``x.json``
    and no ``x.preview.png`` written through it: 400 with the reason, nothing created outside."""
    root = tmp_path / "embeddings"
    write_a1111_pt(root / "good.pt", vectors(1))
    shutil.copytree(outside, root / "sub")
    library = Library([root], background_hashing=False)
    library.refresh()
    entry = library.get("far")
    card = cards.card_id(library, entry)
    shutil.rmtree(root / "sub")
    os.symlink(outside, root / "sub")
    site = client(library)
    TALLY["inputs"] += 1
    answer = site.post(f"{P}/metadata", json={"id": card, "notes": "written outside"}, headers=WRITE)
    assert answer.status_code == 400 and "outside the embeddings folder" in answer.json()["detail"]
    with pytest.raises(WriteError) as refused:
        library.save_user_metadata(entry, {"notes": "x"})
    assert refused.value.kind == "outside"
    upload = site.post(f"{P}/preview", params={"id": card}, content=b"\x89PNG", headers={**WRITE,
                                                                                          "content-type": "image/png"})
    assert upload.status_code == 400
    assert sorted(p.name for p in outside.iterdir()) == ["far.pt", "secret.json", "secret.txt"]
    assert site.post(f"{P}/metadata", json={"id": cards.card_id(library, library.get("good")), "notes": "ok"},
                     headers=WRITE).status_code == 200


def test_group_files_are_read_written_and_deleted_only_inside(tmp_path: Path, outside: Path) -> None:
    """Groups share the rule: a group file in a sub-folder later swapped for a link out is not read, rewritten or
    deleted through it (the file outside stays as it was)."""
    from sd_embeddings.library import group_store
    from sd_embeddings.library.groups import Member

    root = tmp_path / "embeddings"
    write_a1111_pt(root / "sub" / "neg.pt", vectors(1))
    library = Library([root], background_hashing=False)
    library.refresh()
    group = group_store.save_group(library, "Mine", "", "auto", (Member("neg"),))
    (root / "Mine.tigroup.json").replace(root / "sub" / "Mine.tigroup.json")
    group_store._forget(library, str(root))
    group_store._forget(library, str(root / "sub"))
    [group] = group_store.groups_of(library)
    secret = (root / "sub" / "Mine.tigroup.json").read_bytes()
    shutil.copytree(root / "sub", outside / "sub")
    shutil.rmtree(root / "sub")
    os.symlink(outside / "sub", root / "sub")
    TALLY["inputs"] += 1
    with pytest.raises(OutsideError):
        group_store.delete_group(library, group)
    with pytest.raises(WriteError):
        group_store.save_group(library, "Mine", "changed", "auto", (Member("neg"),), replacing=group)
    assert (outside / "sub" / "Mine.tigroup.json").read_bytes() == secret
    group_store._forget(library, str(root / "sub"))
    assert "outside" in next(g for g in group_store.groups_of(library) if g.name == "Mine").problem
