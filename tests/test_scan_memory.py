"""What a scanned library holds per file: values that repeat over thousands of files (shapes, format names,
statuses, the empty sidecars record) are one object each, whether read from the files or from the scan cache, and
bytes held per file are bounded (tracemalloc). Real files in tmp_path; identity and bytes are checked, never times."""

from __future__ import annotations

import gc
import json
import tracemalloc

from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors

from sd_embeddings.library import Library, cache_file
from sd_embeddings.library.clip_text import keyword_key
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
        assert shared([e.sidecars for e in library.entries])  # none has a sidecar: one shared empty record
    xl = again.find(tmp_path / "emb" / "xl.safetensors").header.shape
    assert xl is not again.entries[0].header.shape and xl.parts == {"clip_l": (2, 768), "clip_g": (2, 1280)}
    rows = [record[2] for record in HashCache(cache)._items.values()]  # as read from the file, before a scan
    assert len(rows) == 13
    for column in ("status", "layout"):
        at = cache_file.SCAN_COLUMNS.index(column)
        assert shared([row[at] for row in rows if row[cache_file.SCAN_COLUMNS.index("layout")] == rows[0][
            cache_file.SCAN_COLUMNS.index("layout")]])


def rows_by_path(cache) -> dict[str, tuple]:
    columns = json.loads(cache.read_text())["columns"]
    names = [name for name in columns if name != "path"]
    return {path: tuple(json.dumps(columns[name][i]) for name in names) for i, path in enumerate(columns["path"])}


def held_per_file(build, files: int) -> float:
    """Bytes still allocated (tracemalloc) after ``build()`` returned, with its result alive, per file."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept is not None
    return held / files


def test_a_library_restarted_from_its_scan_cache_holds_one_copy_of_each_files_record(tmp_path):
    """200 real files scanned, verified and cached; a second library (a restart) reads them from the cache. The
    cache keeps no row of its own for a file the library holds (the library's record is the one copy), and what
    the restarted library holds per file stays under 1,500 bytes (1,260 measured): before, every file was two
    entries with a ``__dict__`` each, an empty list each, and the cache's own tuples, stamps and path (2,310)."""
    for i in range(100):
        write_a1111_pt(tmp_path / "emb" / f"sub{i % 5}" / f"a{i}.pt", vectors(2, seed=i))
        write_safetensors(tmp_path / "emb" / f"sub{i % 5}" / f"s{i}.safetensors", {"emb_params": vectors(1, seed=i)})
    cache = tmp_path / "cache" / "hashes.json"
    first = Library([tmp_path / "emb"], hash_cache=HashCache(cache), background_hashing=False)
    first.refresh()
    first.checks._one_pass()  # hash and verify every file, then save the cache
    saved = rows_by_path(cache)

    def restart() -> Library:
        library = Library([tmp_path / "emb"], hash_cache=HashCache(cache), background_hashing=False)
        library.refresh()
        return library

    assert held_per_file(restart, 200) < 1500
    again = restart()
    assert not again.hash_cache._items and all(e.sha256 and e.verified and e.fingerprint for e in again.entries)
    assert not hasattr(again.entries[0], "__dict__") and again.entries[0].collides_with == ()
    again.hash_cache._dirty = True
    again.hash_cache.save()  # written from the library's records: the same document
    assert rows_by_path(cache) == saved and len(saved) == 200


def test_a_second_library_on_the_same_cache_gets_the_first_ones_rows_back(tmp_path):
    """The cache adopts one library's records at a time: when another library adopts, the first one's rows are
    held by the cache again, so a save still writes both libraries' files."""
    write_a1111_pt(tmp_path / "one" / "a.pt", vectors(1))
    write_a1111_pt(tmp_path / "two" / "b.pt", vectors(1, seed=1))
    cache = HashCache(tmp_path / "hashes.json")
    one = Library([tmp_path / "one"], hash_cache=cache, background_hashing=False)
    one.refresh()
    assert not cache._items
    two = Library([tmp_path / "two"], hash_cache=cache, background_hashing=False)
    two.refresh()
    assert list(cache._items) == [one.entries[0].path]
    one.ensure_hash(one.entries[0])
    two.ensure_hash(two.entries[0])
    cache.save()
    columns = json.loads((tmp_path / "hashes.json").read_text())["columns"]
    assert sorted(columns["path"]) == sorted([one.entries[0].path, two.entries[0].path])
    assert all(len(value) == 64 for value in columns["sha256"])


def test_keyword_keys_are_remembered_without_a_node_per_name():
    """``keyword_key`` of 10,000 names is asked for on every rebuild, so it is remembered: the name's key string and
    one dict slot, under 110 bytes a name (the LRU cache it replaced kept a node per name too: 145)."""
    names = [f"style_{i:05d}x" for i in range(10_000)]
    assert held_per_file(lambda: [keyword_key(name) for name in names] and True, len(names)) < 110
    assert keyword_key("Style_00042X") == keyword_key("style_00042x") == "style _ 0 0 0 4 2 x"
