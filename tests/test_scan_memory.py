"""What a scanned library holds per file: values that repeat over thousands of files (shapes, format names,
statuses) are one object each, whether read from the files or from the scan cache. Real files in tmp_path;
object identity is checked, never sizes or times."""

from __future__ import annotations

from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors

from sd_embeddings.library import Library, cache_file
from sd_embeddings.library.hashing import HashCache


def write_library(root) -> None:
    for i in range(6):
        write_a1111_pt(root / f"a{i}.pt", vectors(2, seed=i))
        write_safetensors(root / f"s{i}.safetensors", {"emb_params": vectors(2, seed=10 + i)})
    write_safetensors(root / "xl.safetensors", sdxl_vectors(2))


def shared(values: list) -> bool:
    return all(value is values[0] for value in values)


def test_repeated_header_values_are_one_object_from_files_and_from_the_scan_cache(tmp_path):
    write_library(tmp_path / "emb")
    cache = tmp_path / "cache" / "hashes.json"
    first = Library([tmp_path / "emb"], hash_cache=HashCache(cache), background_hashing=False)
    first.refresh()
    first.hash_cache.save()
    again = Library([tmp_path / "emb"], hash_cache=HashCache(cache), background_hashing=False)
    again.refresh()
    for library in (first, again):
        pt = [e.header for e in library.entries if e.path.endswith(".pt")]
        st = [e.header for e in library.entries if e.keyword.startswith("s")]
        assert len(pt) == 6 and len(st) == 6
        assert shared([h.shape for h in pt + st]) and shared([h.layout for h in pt])
    xl = again.find(tmp_path / "emb" / "xl.safetensors").header.shape
    assert xl is not again.entries[0].header.shape and xl.parts == {"clip_l": (2, 768), "clip_g": (2, 1280)}
    rows = [record[2] for record in HashCache(cache)._items.values()]  # as read from the file, before a scan
    assert len(rows) == 13
    for column in ("status", "layout"):
        at = cache_file.SCAN_COLUMNS.index(column)
        assert shared([row[at] for row in rows if row[cache_file.SCAN_COLUMNS.index("layout")] == rows[0][
            cache_file.SCAN_COLUMNS.index("layout")]])
