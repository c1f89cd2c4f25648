"""A refresh that changed a few files updates the database's tables for those files only, and they equal what a
full rebuild gives. Fakes: the WebUI's ``modules`` (conftest, its whitespace tokenizer); real files, library and
database. The work is counted (rebuilds of the keyword lookup), never timed."""

from __future__ import annotations

import shutil

from factories import sdxl_vectors, vectors, write_a1111_pt, write_image, write_safetensors

from sd_embeddings.library import Library
from sd_embeddings.webui import database as database_module
from sd_embeddings.webui.database import LibraryDatabase


def tables(db: LibraryDatabase) -> tuple:
    def shown(embedding) -> str:
        return getattr(embedding, "filename", None) or f"external:{embedding.name}"

    lookup = {first: sorted((tuple(ids), shown(e)) for ids, e in bucket) for first, bucket in db.ids_lookup.items()}
    ordered = all([len(ids) for ids, _ in bucket] == sorted((len(ids) for ids, _ in bucket), reverse=True)
                  for bucket in db.ids_lookup.values())
    return ({name: shown(e) for name, e in db.word_embeddings.items()}, list(db.word_embeddings),
            {name: shown(e) for name, e in db.skipped_embeddings.items()}, lookup, ordered)


def test_a_few_changed_files_update_the_tables_which_equal_a_rebuild(webui, monkeypatch):
    root = webui.folder
    for i in range(30):
        write_safetensors(root / f"g{i % 3}" / f"e{i}.safetensors", {"emb_params": vectors(1, seed=i)})
    write_a1111_pt(root / "deep" / "er" / "e4.pt", vectors(2))  # a duplicate of g1/e4
    write_safetensors(root / "xl" / "x1.safetensors", sdxl_vectors(1))  # skipped on an SD1 model
    model = webui.load_model(768)
    db = webui.make_db()
    embedding_class = webui.modules["modules.textual_inversion.textual_inversion"].Embedding  # the fake WebUI's
    db.register_embedding_by_name(embedding_class(vectors(1), "outside"), model, "outside")  # as a Lora bundle does
    db.load_textual_inversion_embeddings()
    rebuilds: list[int] = []
    real = database_module.build_lookup
    monkeypatch.setattr(database_module, "build_lookup", lambda *a: rebuilds.append(1) or real(*a))
    changes = [
        lambda: write_safetensors(root / "g0" / "fresh.safetensors", {"emb_params": vectors(1)}),
        lambda: (root / "g1" / "e4.safetensors").unlink(),  # deep/er/e4.pt is used now
        lambda: write_safetensors(root / "g2" / "e5.safetensors", sdxl_vectors(1)),  # now SDXL: skipped
        lambda: write_a1111_pt(root / "g0" / "outside.pt", vectors(3)),  # our file takes the name
        lambda: (root / "g0" / "outside.pt").unlink(),  # the registered one is back
        lambda: write_image(root / "g2" / "pic.png", vectors(1), "e7"),  # a stored name: a duplicate of e7
        lambda: shutil.move(root / "g0" / "e3.safetensors", root / "g1" / "e3.safetensors"),
    ]
    for change in changes:
        change()
        db.load_textual_inversion_embeddings(force_reload=True)
        fresh = LibraryDatabase(Library([], background_hashing=False))
        fresh.add_embedding_dir(str(root))
        fresh.register_embedding_by_name(db._external["outside"], model, "outside")
        fresh.load_textual_inversion_embeddings()
        assert tables(db) == tables(fresh)
    assert len(rebuilds) == len(changes)  # only the fresh databases built their lookups
    assert db.word_embeddings["outside"] is db._external["outside"] and "e5" in db.skipped_embeddings
    model.cond_stage_model.hijack.embedding_db = db
    chunks = model.cond_stage_model.tokenize_line("a e4 and outside, fresh e5")[0]
    assert [fix.embedding.name for chunk in chunks for fix in chunk.fixes] == ["e4", "outside", "fresh"]
