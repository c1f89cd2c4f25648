"""The keyword index (and the near-miss index) cached per library version never outlives a refresh that
happened while it was being built. Real files and a real library; the refresh is triggered from inside the
build (a wrapper around ``Library.usable``) to hit the window deterministically."""

from __future__ import annotations

from factories import vectors, write_safetensors

from sd_embeddings.library import Library
from sd_embeddings.prompt.diagnostics import near_miss_index
from sd_embeddings.prompt.keywords import indexes_for
from sd_embeddings.prompt.tokenizer import bundled
from sd_embeddings.records import Family


def _library_refreshed_mid_build(tmp_path, monkeypatch) -> Library:
    write_safetensors(tmp_path / "emb" / "first.safetensors", {"emb_params": vectors(1)})
    library = Library([tmp_path / "emb"], family=Family.SD1, background_hashing=False)
    library.refresh()
    real_usable = library.usable

    def usable_then_refresh():
        entries = real_usable()  # what the index is built from ...
        write_safetensors(tmp_path / "emb" / "second.safetensors", {"emb_params": vectors(2)})
        library.refresh()  # ... while another thread rescans and finds a new file
        monkeypatch.setattr(library, "usable", real_usable)
        return entries

    monkeypatch.setattr(library, "usable", usable_then_refresh)
    return library


def test_keyword_index_built_across_a_refresh_is_rebuilt(tmp_path, monkeypatch):
    library = _library_refreshed_mid_build(tmp_path, monkeypatch)
    tok = bundled()
    indexes_for(library, tok, Family.SD1)
    found = {entry.keyword for bucket in indexes_for(library, tok, Family.SD1).usable.buckets.values()
             for _, by_ids in bucket for entry in by_ids.values()}
    assert found == {"first", "second"}


def test_near_miss_index_built_across_a_refresh_is_rebuilt(tmp_path, monkeypatch):
    library = _library_refreshed_mid_build(tmp_path, monkeypatch)
    stale = near_miss_index(library, Family.SD1)
    assert near_miss_index(library, Family.SD1) is not stale
