"""The library over real folders: statuses, collisions, compatibility, incremental rescans, sidecars, hashes."""

from __future__ import annotations

import hashlib
import os
import pickle

import torch
from factories import (
    sdxl_vectors,
    touch_mtime,
    vectors,
    write_a1111_pt,
    write_image,
    write_safetensors,
)
from PIL import Image

from sd_embeddings.library import Library
from sd_embeddings.library import library as library_module
from sd_embeddings.library.hashing import HashCache
from sd_embeddings.records import Family, Status


def by_keyword(library: Library) -> dict[str, object]:
    return {entry.keyword: entry for entry in library.entries}


def test_every_status_with_reasons(tmp_path):
    write_a1111_pt(tmp_path / "good.pt", vectors(2))
    write_safetensors(tmp_path / "xl.safetensors", sdxl_vectors(4))
    write_safetensors(tmp_path / "odd.safetensors", {"emb_params": vectors(1, 512)})
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"x": os.system}, protocol=2))
    (tmp_path / "broken.safetensors").write_bytes(b"\x0a\x00\x00\x00\x00\x00\x00\x00{not json}")
    torch.save({"a": vectors(2), "b": vectors(2), "c": vectors(2)}, tmp_path / "weird.bin")
    (tmp_path / "empty.pt").write_bytes(b"")
    write_a1111_pt(tmp_path / "sub" / "GOOD.pt", vectors(1, seed=3))
    library = Library([tmp_path], family=Family.SD1, background_hashing=False)
    library.refresh()
    entries = {entry.relpath: entry for entry in library.entries}
    assert entries["good.pt"].status is Status.LOADED
    assert entries["xl.safetensors"].status is Status.INCOMPATIBLE
    assert entries["xl.safetensors"].reason == "SDXL embedding (768+1280), model is SD1.5"
    assert entries["odd.safetensors"].status is Status.INCOMPATIBLE and "matches no known model" in entries[
        "odd.safetensors"].reason
    assert entries["evil.pt"].status is Status.UNSAFE and "posix.system" in entries["evil.pt"].reason
    assert entries["broken.safetensors"].status is Status.CORRUPT and "JSON" in entries["broken.safetensors"].reason
    assert entries["weird.bin"].status is Status.NOT_AN_EMBEDDING and "3 tensors" in entries["weird.bin"].reason
    assert entries["empty.pt"].status is Status.NOT_AN_EMBEDDING and "0 bytes" in entries["empty.pt"].reason
    assert entries["sub/GOOD.pt"].status is Status.DUPLICATE
    assert "good.pt" in entries["sub/GOOD.pt"].reason and "shallower folder" in entries["sub/GOOD.pt"].reason
    assert entries["good.pt"].collides_with == [str(tmp_path / "sub" / "GOOD.pt")]
    assert library.get("GOOD").path == str(tmp_path / "good.pt")  # case-insensitive keyword lookup


def test_same_name_for_two_families_follows_the_model(tmp_path):
    write_a1111_pt(tmp_path / "a" / "neg.pt", vectors(2))
    write_safetensors(tmp_path / "b" / "neg.safetensors", sdxl_vectors(2))
    library = Library([tmp_path], family=Family.SD1, background_hashing=False)
    library.refresh()
    assert library.get("neg").family is Family.SD1
    assert library.set_family(Family.SDXL)
    assert library.get("neg").family is Family.SDXL
    statuses = sorted(entry.status.value for entry in library.entries)
    assert statuses == ["incompatible", "loaded"]  # the other one is not hidden, nor called a duplicate


def test_collision_rule_is_deterministic(tmp_path):
    write_a1111_pt(tmp_path / "x" / "Same.pt", vectors(1))
    write_a1111_pt(tmp_path / "y" / "same.pt", vectors(1, seed=1))
    first = Library([tmp_path], background_hashing=False)
    first.refresh()
    assert first.get("same").relpath == "x/Same.pt"
    assert "alphabetical" in first.find(tmp_path / "y" / "same.pt").reason


def test_incremental_rescan_add_modify_delete_in_subfolders(tmp_path, monkeypatch):
    write_a1111_pt(tmp_path / "deep" / "er" / "one.pt", vectors(1))
    write_safetensors(tmp_path / "two.safetensors", {"emb_params": vectors(2)})
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    reads: list[str] = []
    original = library_module.read_entry
    monkeypatch.setattr(library_module, "read_entry",
                        lambda item, *rest: reads.append(item.name) or original(item, *rest))
    assert not library.refresh().any and reads == []  # nothing changed: nothing re-read
    write_safetensors(tmp_path / "deep" / "new.safetensors", {"emb_params": vectors(3)})
    write_a1111_pt(tmp_path / "deep" / "er" / "one.pt", vectors(4, seed=9))
    touch_mtime(tmp_path / "deep" / "er" / "one.pt")
    (tmp_path / "two.safetensors").unlink()
    report = library.refresh()
    assert [os.path.basename(p) for p in report.added] == ["new.safetensors"]
    assert [os.path.basename(p) for p in report.changed] == ["one.pt"]
    assert [os.path.basename(p) for p in report.removed] == ["two.safetensors"]
    assert sorted(reads) == ["new.safetensors", "one.pt"]
    assert library.get("one").vectors == 4 and library.get("two") is None
    assert torch.equal(library.load(library.get("one")).vec, vectors(4, seed=9))


def test_symlink_loop_and_case_insensitive_extensions(tmp_path):
    write_a1111_pt(tmp_path / "sub" / "Loud.PT", vectors(1))
    write_safetensors(tmp_path / "Also.SAFETENSORS", {"emb_params": vectors(1)})
    os.symlink(tmp_path, tmp_path / "sub" / "loop")
    library = Library([tmp_path], background_hashing=False)
    report = library.refresh()
    assert {entry.keyword for entry in library.entries} == {"Loud", "Also"}
    assert len(report.loops) == 1


def test_previews_descriptions_and_plain_pictures(tmp_path):
    write_safetensors(tmp_path / "neg.safetensors", {"emb_params": vectors(2)})
    Image.new("RGB", (8, 8)).save(tmp_path / "neg.png")  # preview beside the embedding: never decoded
    Image.new("RGB", (8, 8)).save(tmp_path / "other.preview.png")
    (tmp_path / "neg.description.txt").write_text("for bad hands", encoding="utf-8")
    Image.new("RGB", (8, 8), (9, 9, 9)).save(tmp_path / "holiday.jpg")  # unknown extension: ignored
    Image.new("RGB", (8, 8), (9, 9, 9)).save(tmp_path / "stray.png")
    write_image(tmp_path / "card.png", vectors(3), "inside-name")
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    entries = by_keyword(library)
    assert set(entries) == {"neg", "stray", "inside-name"}
    assert entries["neg"].sidecars.preview == "neg.png"
    assert library.description(entries["neg"]) == "for bad hands"
    assert entries["stray"].is_plain_image and not entries["stray"].is_problem
    assert entries["inside-name"].sidecars.preview == "card.png" and entries["inside-name"].status is Status.LOADED


def test_user_metadata_overrides_description_and_is_written_beside_the_file(tmp_path):
    write_safetensors(tmp_path / "neg.safetensors", {"emb_params": vectors(2)})
    (tmp_path / "neg.txt").write_text("from txt", encoding="utf-8")
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    entry = library.get("neg")
    assert library.description(entry) == "from txt"
    library.save_user_metadata(entry, {"description": "héllo", "target": "negative", "weight": 0.8})
    assert library.description(entry) == "héllo"
    text = (tmp_path / "neg.json").read_text(encoding="utf-8")
    assert '"héllo"' in text and '    "target": "negative"' in text


def test_one_bad_file_never_hides_a_good_one(tmp_path):
    for i in range(5):
        write_a1111_pt(tmp_path / f"good{i}.pt", vectors(1, seed=i))
        (tmp_path / f"bad{i}.pt").write_bytes(os.urandom(300))
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    assert len(library.usable()) == 5
    assert sum(entry.is_problem for entry in library.entries) == 5


def test_hashes_are_cached_by_path_size_and_mtime(tmp_path):
    path = write_a1111_pt(tmp_path / "emb.pt", vectors(2))
    cache = HashCache(tmp_path / "cache" / "hashes.json")
    library = Library([tmp_path], hash_cache=cache, background_hashing=False)
    library.refresh()
    entry = library.get("emb")
    assert entry.sha256 is None  # not computed at scan time
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert library.ensure_hash(entry) == expected and entry.shorthash == expected[:12]
    cache.save()
    again = Library([tmp_path], hash_cache=HashCache(tmp_path / "cache" / "hashes.json"), background_hashing=False)
    again.refresh()
    assert again.get("emb").sha256 == expected  # known from the cache without reading the file


def test_background_hashing_fills_hashes(tmp_path):
    write_a1111_pt(tmp_path / "emb.pt", vectors(2))
    library = Library([tmp_path])
    library.refresh()
    assert library.checks.idle.wait(600)  # waits for the worker (a hang cap, not a speed bound)
    assert library.get("emb").sha256 == hashlib.sha256((tmp_path / "emb.pt").read_bytes()).hexdigest()


def test_folders_changed_sees_new_files_in_subfolders(tmp_path):
    write_a1111_pt(tmp_path / "a" / "b" / "one.pt", vectors(1))
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    assert not library.folders_changed()
    write_a1111_pt(tmp_path / "a" / "b" / "two.pt", vectors(1))
    assert library.folders_changed()


def test_scan_reads_headers_only_and_verification_catches_bad_values(tmp_path):
    bad = vectors(3)
    bad[2, 0] = float("inf")
    write_safetensors(tmp_path / "inf.safetensors", {"emb_params": bad})
    write_a1111_pt(tmp_path / "cut.pt", vectors(4))
    raw = (tmp_path / "cut.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[:-400])  # central directory gone, data.pkl intact
    write_a1111_pt(tmp_path / "fine.pt", vectors(2))
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    # the scan parses the zip container exactly as a load does (central directory), so a cut file is refused now
    assert {e.keyword: e.status for e in library.entries} == {"inf": Status.LOADED, "cut": Status.CORRUPT,
                                                              "fine": Status.LOADED}
    assert not any(e.verified for e in library.entries if e.keyword != "cut")
    version = library.version
    for entry in library.entries:
        library.verify(entry)
    statuses = {e.keyword: (e.status, e.reason) for e in library.entries}
    assert statuses["inf"][0] is Status.CORRUPT and "1 of 3 vectors contain NaN" in statuses["inf"][1]
    assert statuses["cut"][0] is Status.CORRUPT
    assert statuses["fine"] == (Status.LOADED, "") and library.version > version
    assert all(e.sha256 for e in library.entries)


def test_deep_scan_checks_values_at_once(tmp_path):
    bad = vectors(2)
    bad[0, 0] = float("nan")
    write_safetensors(tmp_path / "nan.safetensors", {"emb_params": bad})
    library = Library([tmp_path], background_hashing=False, deep=True)
    library.refresh()
    assert library.entries[0].status is Status.CORRUPT


def test_load_of_a_file_gone_bad_marks_it(tmp_path):
    path = write_safetensors(tmp_path / "x.safetensors", {"emb_params": vectors(2)})
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    entry = library.get("x")
    bad = vectors(2)
    bad[1, 1] = float("nan")
    info = path.stat()
    write_safetensors(path, {"emb_params": bad})
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # same size and mtime: the scan cannot tell
    import pytest

    from sd_embeddings.errors import CorruptFileError

    with pytest.raises(CorruptFileError):
        library.load(entry)
    assert library.find(path).status is Status.CORRUPT and library.get("x") is None


def test_restart_trusts_the_cache_and_reads_no_unchanged_file(tmp_path, monkeypatch):
    folder = tmp_path / "emb"
    write_a1111_pt(folder / "good.pt", vectors(3), legacy=True)
    write_safetensors(folder / "xl.safetensors", sdxl_vectors(2))
    (folder / "evil.pt").write_bytes(pickle.dumps({"x": os.system}, protocol=2))
    write_image(folder / "pic.png", vectors(2), "stored-name")
    cache_file = tmp_path / "cache.json"
    first = Library([folder], family=Family.SD1, hash_cache=HashCache(cache_file), background_hashing=False)
    first.refresh()
    for entry in first.entries:
        first.verify(entry)
    first.hash_cache.save()
    expected = [(e.keyword, e.status, e.reason, e.vectors, e.family, e.sha256) for e in first.entries]

    from sd_embeddings.formats import decoding as formats

    def no_reading(*args, **kwargs):
        raise AssertionError("an unchanged file was read again")

    monkeypatch.setattr(formats, "scan_file", no_reading)
    monkeypatch.setattr(formats, "read_file", no_reading)
    again = Library([folder], family=Family.SD1, hash_cache=HashCache(cache_file), background_hashing=False)
    again.refresh()
    assert [(e.keyword, e.status, e.reason, e.vectors, e.family, e.sha256) for e in again.entries] == expected
    assert all(e.verified for e in again.entries if e.status is Status.LOADED)
    monkeypatch.undo()
    write_a1111_pt(folder / "good.pt", vectors(5), legacy=True)
    touch_mtime(folder / "good.pt")
    third = Library([folder], hash_cache=HashCache(cache_file), background_hashing=False)
    third.refresh()
    assert third.get("good").vectors == 5 and not third.get("good").verified


def test_sidecar_links_leading_elsewhere_are_not_read(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"description": "secret"}', encoding="utf-8")
    (outside / "secret.txt").write_text("secret", encoding="utf-8")
    folder = tmp_path / "emb"
    write_safetensors(folder / "neg.safetensors", {"emb_params": vectors(1)})
    os.symlink(outside / "secret.json", folder / "neg.json")
    os.symlink(outside / "secret.txt", folder / "neg.txt")
    library = Library([folder], background_hashing=False)
    library.refresh()
    entry = library.get("neg")
    assert library.user_metadata(entry) == {} and library.description(entry) == ""


def test_file_vanishing_between_listing_and_reading_gets_a_plain_reason(tmp_path, monkeypatch):
    """The file is really deleted right after the folder listing (a spy on the real walk), before it is read."""
    write_safetensors(tmp_path / "gone.safetensors", {"emb_params": vectors(1)})
    real_walk = library_module.walk_folders

    def walk_then_delete(folders):
        found = real_walk(folders)
        (tmp_path / "gone.safetensors").unlink()
        return found

    monkeypatch.setattr(library_module, "walk_folders", walk_then_delete)
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    monkeypatch.undo()
    (entry,) = library.entries
    assert entry.status is Status.CORRUPT and entry.reason == "cannot read the file (No such file or directory)"
