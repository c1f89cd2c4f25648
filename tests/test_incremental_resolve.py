"""After a scan that changed a few files, statuses (compatibility, collisions) are re-applied only to the keywords
those files were or are in, and the result equals a full resolve. Real files in tmp_path; the public entries made
are counted (the work), never timed."""

from __future__ import annotations

import shutil

from factories import sdxl_vectors, vectors, write_a1111_pt, write_image, write_safetensors

from sd_embeddings.library import Library, collisions, resolution
from sd_embeddings.records import Family


def state(entries) -> list[tuple]:
    return [(e.path, e.status, e.reason, e.keyword, e.sidecars.preview, sorted(e.collides_with)) for e in entries]


def full_resolve(library: Library) -> tuple[list[tuple], dict[str, str]]:
    entries, winners = collisions.resolve(library._files.values(), library.family, library.folders)
    return state(entries), {key: entry.path for key, entry in winners.items()}


def check_equal_to_full(library: Library) -> None:
    entries, winners = full_resolve(library)
    assert state(library.entries) == entries
    assert {key: entry.path for key, entry in library._winners.items()} == winners
    assert {path: entry.path for path, entry in library._by_path.items()} == {e[0]: e[0] for e in entries}


def test_a_change_copies_only_the_entries_of_the_keywords_it_touches_and_equals_a_full_resolve(tmp_path,
                                                                                             monkeypatch):
    root = tmp_path / "emb"
    for i in range(40):
        write_safetensors(root / f"g{i % 4}" / f"e{i}.safetensors", {"emb_params": vectors(1, seed=i)})
    write_a1111_pt(root / "dup" / "e3.pt", vectors(2))  # a deeper e3: a duplicate of g3/e3
    write_safetensors(root / "xl" / "e5.safetensors", sdxl_vectors(1))  # incompatible beside g1/e5
    write_image(root / "pics" / "claims.png", vectors(1), "e7")  # a picture claiming e7's keyword
    library = Library([root], family=Family.SD1, background_hashing=False)
    library.refresh()
    check_equal_to_full(library)
    made: list[str] = []
    real = resolution.public
    monkeypatch.setattr(resolution, "public", lambda record, family: made.append(record.path) or real(record, family))
    changes = [
        lambda: write_safetensors(root / "g0" / "fresh.safetensors", {"emb_params": vectors(1)}),
        lambda: (root / "g3" / "e3.safetensors").unlink(),  # dup/e3.pt wins now
        lambda: write_safetensors(root / "g1" / "e5.safetensors", sdxl_vectors(2)),  # both e5 files SDXL now
        lambda: shutil.move(root / "pics" / "claims.png", root / "g2" / "claims.png"),
        lambda: write_safetensors(root / "g0" / "e8.safetensors", {"emb_params": vectors(1, 1024)}),  # SD2
    ]
    for change in changes:
        made.clear()
        change()
        report = library.refresh()
        assert report.any
        check_equal_to_full(library)
        assert 0 < len(made) <= 4, made  # the touched files and their keyword's other files, not all 43
        assert library.changes[1] is not None and set(made) <= library.changes[1]
    library.set_family(Family.SDXL)  # a model switch re-applies compatibility everywhere
    check_equal_to_full(library)
    assert library.changes[1] is None
