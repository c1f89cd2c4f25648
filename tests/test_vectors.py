"""What vectors say: per-vector norms and flags, the vector fingerprint (same vectors in any file format), and the
nearest vocabulary tokens against a real token table. Files are written here; the token table has known rows."""

from __future__ import annotations

import json

import pytest
import torch
from factories import sdxl_vectors, vectors, write_a1111_pt, write_image, write_safetensors
from token_tables import VOCABULARY, crafted_table, token_id

from sd_embeddings.formats import decoding
from sd_embeddings.library import Library, cache_file, verifier
from sd_embeddings.library import vectors as vector_math
from sd_embeddings.library.hashing import HashCache
from sd_embeddings.records import EmbeddingData
from sd_embeddings.tab import cards


def test_norms_and_zero_and_nonfinite_rows() -> None:
    rows = torch.tensor([[3.0, 4.0], [0.0, 0.0], [float("nan"), 0.0], [1.0, float("inf")]])
    assert vector_math.vector_stats(rows) == {"norms": [5.0, 0.0, None, None], "nonfinite": [2, 3], "zero": [1]}


def test_a_nan_file_names_its_bad_vectors(tmp_path) -> None:
    vec = vectors(10)
    vec[3, 5] = float("nan")
    vec[9, 0] = float("inf")
    write_a1111_pt(tmp_path / "nan.pt", vec)
    with pytest.raises(decoding.CorruptFileError, match=r"2 of 10 vectors contain NaN or infinite values "
                                                        r"\(vectors 4, 10\)"):
        decoding.decode_file(tmp_path / "nan.pt")


def fingerprint_of(path) -> str:
    return vector_math.fingerprint(decoding.decode_file(path))


def test_the_same_vectors_have_one_fingerprint_in_every_format(tmp_path) -> None:
    vec = vectors(3, seed=4)
    files = [write_a1111_pt(tmp_path / "a.pt", vec), write_a1111_pt(tmp_path / "legacy.pt", vec, legacy=True),
             write_safetensors(tmp_path / "b.safetensors", {"emb_params": vec}),
             write_safetensors(tmp_path / "half.safetensors", {"emb_params": vec.half()}),
             write_image(tmp_path / "c.png", vec, "c")]
    assert len({fingerprint_of(path) for path in files}) == 1
    other = vec.clone()
    other[1, 7] += 0.01  # beyond float16 rounding: other vectors
    assert fingerprint_of(write_safetensors(tmp_path / "d.safetensors", {"emb_params": other})) != \
        fingerprint_of(files[0])


def test_sdxl_fingerprint_covers_both_parts(tmp_path) -> None:
    xl = sdxl_vectors(2, seed=1)
    same = fingerprint_of(write_safetensors(tmp_path / "a.safetensors", xl))
    torch.save(xl, tmp_path / "a.pt")
    assert fingerprint_of(tmp_path / "a.pt") == same
    swapped = {"clip_l": xl["clip_l"], "clip_g": xl["clip_g"].flip(0)}
    assert fingerprint_of(write_safetensors(tmp_path / "b.safetensors", swapped)) != same
    one_part = EmbeddingData(xl["clip_l"], "test")
    assert vector_math.fingerprint(one_part) != same


def test_nearest_tokens_find_the_rows_the_vectors_are() -> None:
    cat, dog = vectors(1, seed=21)[0], vectors(1, seed=22)[0]
    table = crafted_table({"cat": cat, "dog": dog, "fox": -cat, "zebra": cat * 2 + dog * 0.01})
    rows = torch.stack([cat, dog, torch.zeros(768), cat * 0.3])
    found = vector_math.nearest_tokens(rows, table, k=3)
    assert [t for t, _ in found[0][:2]] == [token_id("cat"), token_id("zebra")]
    assert found[0][0][1] == pytest.approx(1.0, abs=1e-4)
    assert found[1][0][0] == token_id("dog") and found[2] is None  # a zero vector has no direction
    assert found[3][0][0] == token_id("cat")
    assert all(-1.0 - 1e-4 <= score <= 1.0 + 1e-4 for row in found if row for _, score in row)


def test_nearest_tokens_read_every_block_and_any_dtype() -> None:
    """Words in the first and the last of the table's blocks, in a float16 table as the WebUI keeps it."""
    first, last = vectors(1, seed=31)[0], vectors(1, seed=32)[0]
    table = crafted_table({}, dtype=torch.float16)
    table[3], table[VOCABULARY - 3] = first.half(), last.half()
    assert VOCABULARY > 6 * vector_math.BLOCK_ROWS  # the lookup has to cross several blocks
    found = vector_math.nearest_tokens(torch.stack([first, last]), table, k=1)
    assert found[0][0][0] == 3 and found[1][0][0] == VOCABULARY - 3


def test_nearest_tokens_look_up_at_most_one_chunk_of_vectors() -> None:
    table = crafted_table({})
    found = vector_math.nearest_tokens(vectors(200, seed=5), table, k=2)
    assert len(found) == vector_math.MAX_NEAREST_VECTORS


def test_background_check_notes_fingerprints_and_the_scan_cache_keeps_them(tmp_path) -> None:
    folder = tmp_path / "emb"
    vec = vectors(2, seed=9)
    write_a1111_pt(folder / "EasyNegative.pt", vec)
    write_safetensors(folder / "sub" / "EasyNegative.safetensors", {"emb_params": vec.half()})
    write_safetensors(folder / "renamed-copy.safetensors", {"emb_params": vec})
    write_a1111_pt(folder / "other.pt", vectors(2, seed=10))
    cache = HashCache(tmp_path / "hashes.json")
    library = Library([folder], hash_cache=cache)
    library.refresh()
    assert library.checks.idle.wait(60)
    prints = {e.relpath: e.fingerprint for e in library.entries}
    assert prints["EasyNegative.pt"] == prints["sub/EasyNegative.safetensors"] == prints["renamed-copy.safetensors"]
    assert prints["other.pt"] not in (None, prints["EasyNegative.pt"])
    shown = {c.relpath: c.same_vectors for c in cards.card_models(library)}
    assert shown["EasyNegative.pt"] == ["sub/EasyNegative.safetensors", "renamed-copy.safetensors"]
    assert shown["other.pt"] == []
    cache.save()
    again = Library([folder], hash_cache=HashCache(tmp_path / "hashes.json"), background_hashing=False)
    again.refresh()  # from the scan cache: nothing decoded, fingerprints known
    assert {e.relpath: e.fingerprint for e in again.entries} == prints


def test_an_older_scan_cache_without_fingerprints_gets_them(tmp_path) -> None:
    folder = tmp_path / "emb"
    write_a1111_pt(folder / "a.pt", vectors(1))
    cache = HashCache(tmp_path / "hashes.json")
    library = Library([folder], hash_cache=cache)
    library.refresh()
    assert library.checks.idle.wait(60)
    cache.save()  # a pass this small is saved at the worker's idle exit (verifier.SAVE_AT_ONCE): now, here
    stored = json.loads((tmp_path / "hashes.json").read_text())
    assert stored["columns"]["verified"] == [True] and stored["columns"]["fingerprint"][0]
    stored["columns"]["fingerprint"] = [None]  # as an earlier version stored them: verified, no fingerprint
    (tmp_path / "hashes.json").write_text(json.dumps(stored))
    again = Library([folder], hash_cache=HashCache(tmp_path / "hashes.json"))
    again.refresh()
    assert again.entries[0].verified and again.checks.idle.wait(60)
    assert again.entries[0].fingerprint == library.entries[0].fingerprint


def test_fingerprint_is_not_a_file_hash(tmp_path) -> None:
    vec = vectors(1)
    a = write_a1111_pt(tmp_path / "a.pt", vec)
    b = write_safetensors(tmp_path / "b.safetensors", {"emb_params": vec})
    assert a.read_bytes() != b.read_bytes() and fingerprint_of(a) == fingerprint_of(b)


def test_a_small_pass_leaves_the_cache_save_to_the_idle_worker(tmp_path, monkeypatch) -> None:
    """A file dropped into a big library: its check did not rewrite the whole scan cache at once (about a second of
    the interpreter at 10,000 files, paid by the generation right after the drop); the worker saves it when idle."""
    monkeypatch.setattr(verifier, "SAVE_AT_ONCE", 3)
    monkeypatch.setattr(verifier, "IDLE_EXIT_S", 0.3)
    writes: list[int] = []
    real = cache_file.encode
    folder = tmp_path / "emb"

    def counted(items: dict) -> bytes:
        # another test's worker, still alive in this process, may save its own cache at its idle exit meanwhile
        if any(path.startswith(str(folder)) for path in items):
            writes.append(len(items))
        return real(items)

    monkeypatch.setattr(cache_file, "encode", counted)
    for i in range(3):
        write_a1111_pt(folder / f"e{i}.pt", vectors(1, seed=i))
    library = Library([folder], hash_cache=HashCache(tmp_path / "hashes.json"))
    library.refresh()
    assert library.checks.idle.wait(60) and writes == [3]  # a pass of SAVE_AT_ONCE files: saved when it ends
    write_a1111_pt(folder / "dropped.pt", vectors(1, seed=9))
    library.refresh()
    assert library.checks.idle.wait(60) and library.get("dropped").verified and writes == [3]
    thread = library.checks._thread
    if thread is not None:
        thread.join(60)  # the idle exit
    assert writes == [3, 4]
    again = Library([folder], hash_cache=HashCache(tmp_path / "hashes.json"))
    again.refresh()
    assert again.get("dropped").verified  # from the cache: nothing read again
