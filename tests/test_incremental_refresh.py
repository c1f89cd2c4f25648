"""A refresh of the folders a watcher saw change lists only those (and new sub-folders in them): real files in
tmp_path; the folder listings are counted (the work), never timed."""

from __future__ import annotations

import shutil

import pytest
from factories import count_folder_listings, vectors, write_safetensors

from sd_embeddings.library import Library


def entries_of(library: Library) -> list[tuple]:
    return [(e.path, e.status, e.keyword, e.sidecars.preview, tuple(e.collides_with)) for e in library.entries]


@pytest.fixture
def tree(tmp_path, monkeypatch):
    for i in range(24):
        write_safetensors(tmp_path / "emb" / f"g{i % 4}" / f"s{i % 3}" / f"e{i}.safetensors",
                          {"emb_params": vectors(1, seed=i)})
    library = Library([tmp_path / "emb"], background_hashing=False)
    library.refresh()
    listed = count_folder_listings(monkeypatch)
    return tmp_path / "emb", library, listed


def test_only_the_changed_folder_is_listed_and_the_result_equals_a_full_scan(tree):
    root, library, listed = tree
    target = root / "g2" / "s1"
    write_safetensors(target / "dropped.safetensors", {"emb_params": vectors(2)})
    (target / "e10.safetensors").unlink()
    (root / "g2" / "s1" / "dropped.preview.png").write_bytes(b"")  # a sidecar appears with it
    report = library.refresh(changed=[str(target)])
    assert listed == [str(target)] and [p.rsplit("/", 1)[1] for p in report.added] == ["dropped.safetensors"]
    assert [p.rsplit("/", 1)[1] for p in report.removed] == ["e10.safetensors"]
    fresh = Library([root], background_hashing=False)
    fresh.refresh()
    assert entries_of(library) == entries_of(fresh)


def test_new_sub_folders_are_walked_and_removed_ones_dropped(tree):
    root, library, listed = tree
    write_safetensors(root / "g1" / "new" / "deeper" / "n1.safetensors", {"emb_params": vectors(1)})
    shutil.rmtree(root / "g3" / "s0")
    library.refresh(changed=[str(root / "g1"), str(root / "g3")])
    assert sorted(listed) == sorted(str(p) for p in (root / "g1", root / "g1" / "new", root / "g1" / "new" / "deeper",
                                                     root / "g3"))
    fresh = Library([root], background_hashing=False)
    fresh.refresh()
    assert entries_of(library) == entries_of(fresh) and library.get("n1") is not None
    assert str(root / "g3" / "s0") not in library.folder_stamps()


def test_a_folder_outside_what_was_scanned_falls_back_to_a_full_walk(tree, tmp_path):
    root, library, listed = tree
    library.refresh(changed=[str(tmp_path / "elsewhere")])
    assert len(listed) == len(library.folder_stamps())
