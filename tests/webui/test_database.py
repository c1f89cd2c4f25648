"""LibraryDatabase against the fake ``modules`` (conftest): fake tokenizer/model, fake ``Embedding`` base class."""

from __future__ import annotations

import os

import pytest
import torch
from factories import sdxl_vectors, touch_mtime, vectors, write_a1111_pt, write_safetensors

from sd_embeddings.errors import ChangedFileError
from sd_embeddings.library.watcher import ChangeWatcher


def test_loads_sorts_and_skips_incompatible_with_reason(webui):
    """Fakes: SD1 model (width 768) with a whitespace tokenizer; the WebUI's Embedding base class."""
    write_a1111_pt(webui.folder / "Zeta.pt", vectors(2))
    write_safetensors(webui.folder / "sub" / "alpha.safetensors", {"emb_params": vectors(3)})
    write_safetensors(webui.folder / "xl.safetensors", sdxl_vectors(2))
    webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings(force_reload=True)
    assert list(db.word_embeddings) == ["alpha", "Zeta"]
    assert db.expected_shape == 768
    xl = db.skipped_embeddings["xl"]
    assert xl.shape == 2048 and xl.vectors == 2 and "SDXL" in xl.reason
    alpha = db.word_embeddings["alpha"]
    base = webui.modules["modules.textual_inversion.textual_inversion"].Embedding
    assert isinstance(alpha, base)
    assert not alpha.vec_loaded
    assert alpha.vec.shape == (3, 768) and alpha.vec.dtype == torch.float32
    assert alpha.filename == str(webui.folder / "sub" / "alpha.safetensors")
    assert len(alpha.hash) == 64 and alpha.shorthash == alpha.hash[:12]
    tokens = [5, *db._tokenize(webui.modules["modules.sd_models"].model_data.sd_model, "zeta")]
    assert db.find_embedding_at_position(tokens, 1) == (db.word_embeddings["Zeta"], 1)
    assert db.find_embedding_at_position(tokens, 0) == (None, None)


def test_register_by_name_longest_first_and_unregister(webui):
    """Fakes: model tokenizer. Lora-style bundles: register_embedding_by_name(None, ...) unregisters."""
    model = webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    base = webui.modules["modules.textual_inversion.textual_inversion"].Embedding
    short, long = base(vectors(1), "bad"), base(vectors(1), "bad hands")
    short.vectors = long.vectors = 1
    db.register_embedding(short, model)
    db.register_embedding(long, model)
    tokens = db._tokenize(model, "bad hands")
    assert db.find_embedding_at_position(tokens, 0) == (long, 2)
    write_a1111_pt(webui.folder / "other.pt", vectors(1))
    db.load_textual_inversion_embeddings()  # rescan keeps names registered from outside
    assert {"bad", "bad hands", "other"} <= set(db.word_embeddings)
    db.register_embedding_by_name(None, model, "bad hands")
    assert "bad hands" not in db.word_embeddings
    assert db.find_embedding_at_position(tokens, 0) == (short, 1)


def test_changes_in_sub_folders_apply_on_next_call(webui):
    """Fakes: SD1 model. No watcher: new/deleted files via per-folder stat; overwrite via the poll check."""
    write_a1111_pt(webui.folder / "a.pt", vectors(1))
    webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    version = db.version
    db.load_textual_inversion_embeddings()
    assert db.version == version  # nothing changed: nothing rebuilt
    (webui.folder / "deep" / "er").mkdir(parents=True)
    db.load_textual_inversion_embeddings()
    write_a1111_pt(webui.folder / "deep" / "er" / "new.pt", vectors(2))
    db.load_textual_inversion_embeddings()
    assert db.word_embeddings["new"].vectors == 2
    os.remove(webui.folder / "deep" / "er" / "new.pt")
    db.load_textual_inversion_embeddings()
    assert "new" not in db.word_embeddings


def test_watcher_sees_overwrite_in_place(webui):
    """Fakes: SD1 model. Real ChangeWatcher (inotify on Linux, polling elsewhere)."""
    import time

    write_a1111_pt(webui.folder / "sub" / "a.pt", vectors(1))
    webui.load_model(768)
    watcher = ChangeWatcher(interval=0.05)
    db = webui.make_db(watcher)
    try:
        db.load_textual_inversion_embeddings()
        old = db.word_embeddings["a"].vec.clone()
        time.sleep(0.2)
        assert not db.files_may_have_changed()
        write_a1111_pt(webui.folder / "sub" / "a.pt", vectors(1, seed=7))
        watcher._dirty.wait(120)  # a hang cap, not a speed bound: the poll thread may be slow on a loaded machine
        db.load_textual_inversion_embeddings()
        assert not torch.equal(db.word_embeddings["a"].vec, old)
    finally:
        watcher.stop()


def test_switch_to_already_loaded_model_reevaluates(webui):
    """Fakes: two model objects (SD1 768, SDXL 2048) swapped in model_data without any callback."""
    write_a1111_pt(webui.folder / "one.pt", vectors(1))
    write_safetensors(webui.folder / "xl.safetensors", sdxl_vectors(1))
    sd1 = webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    assert set(db.word_embeddings) == {"one"}
    webui.load_model(2048)
    db.load_textual_inversion_embeddings()
    assert set(db.word_embeddings) == {"xl"} and set(db.skipped_embeddings) == {"one"}
    webui.modules["modules.sd_models"].model_data.sd_model = sd1
    db.load_textual_inversion_embeddings()
    assert set(db.word_embeddings) == {"one"} and db.expected_shape == 768


def test_print_at_load_line(webui, capsys):
    """Fakes: shared.opts.textual_inversion_print_at_load; the line is the WebUI's exact wording."""
    write_a1111_pt(webui.folder / "b.pt", vectors(1))
    write_safetensors(webui.folder / "xl.safetensors", sdxl_vectors(1))
    webui.load_model(768)
    webui.opts.textual_inversion_print_at_load = True
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    db.load_textual_inversion_embeddings(force_reload=True)
    out = capsys.readouterr().out
    assert out == "Textual inversion embeddings loaded(1): b\nTextual inversion embeddings skipped(1): xl\n"


def replace_file(path, vec) -> None:
    """Rewrite an embedding file so that size+mtime differ from its scan (an in-place save, no rescan yet)."""
    write_a1111_pt(path, vec)
    touch_mtime(path)


@pytest.fixture
def db(webui):
    """SD1 model, ``a.pt`` (2 vectors, seed 1) scanned and registered, its vectors not read yet."""
    write_a1111_pt(webui.folder / "a.pt", vectors(2, seed=1))
    webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    return db


def test_file_replaced_before_first_read_uses_new_vectors_of_same_size(webui, db):
    """Fakes: SD1 model. The file is rewritten between the per-generation check and the forward pass's .vec."""
    registered = db.word_embeddings["a"]
    replace_file(webui.folder / "a.pt", vectors(2, seed=7))
    assert torch.equal(registered.vec, vectors(2, seed=7))
    fresh = db.word_embeddings["a"]  # the database was rescanned and re-registered too
    assert fresh is not registered and fresh.stamp()[2] == (webui.folder / "a.pt").stat().st_mtime_ns


def test_file_replaced_with_other_row_count_keeps_earlier_vectors(webui, db, caplog):
    """Fakes: SD1 model. Vectors loaded by an earlier generation are kept when the new file no longer fits."""
    earlier = db.word_embeddings["a"].vec
    replace_file(webui.folder / "a.pt", vectors(2, seed=2))
    db.load_textual_inversion_embeddings(force_reload=True)  # next generation (Refresh): a new object, not read yet
    registered = db.word_embeddings["a"]
    assert not registered.vec_loaded
    replace_file(webui.folder / "a.pt", vectors(3, seed=3))  # replaced again before the forward pass reads it
    assert torch.equal(registered.vec, earlier)
    assert "using the vectors loaded before" in caplog.text
    assert db.word_embeddings["a"].vectors == 3  # the next generation lays the prompt out for the new file


def test_file_replaced_with_other_row_count_and_nothing_loaded_names_the_file(webui, db):
    """Fakes: SD1 model. No vectors to fall back on: a ChangedFileError that says what happened, no other error."""
    registered = db.word_embeddings["a"]
    replace_file(webui.folder / "a.pt", vectors(3, seed=3))
    with pytest.raises(ChangedFileError) as caught:
        registered.vec  # noqa: B018 - the property read is what is tested
    message = str(caught.value)
    assert str(webui.folder / "a.pt") in message and "now has 3 vectors" in message and "laid out for 2" in message
    assert torch.equal(db.word_embeddings["a"].vec, vectors(3, seed=3))


def test_a_load_without_model_sync_keeps_names_matched(webui):
    """Fakes: SD1 model. The WebUI's API refresh (and Forge's tab and API) load with ``sync_with_sd_model=False``;
    that used to rebuild the tables without a tokenizer, so no prompt matched any embedding until the next model."""
    model = webui.load_model(768)
    write_a1111_pt(webui.folder / "kept.pt", vectors(1))
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    write_a1111_pt(webui.folder / "added.pt", vectors(1, seed=4))
    db.load_textual_inversion_embeddings(force_reload=True, sync_with_sd_model=False)
    for name in ("kept", "added"):
        assert db.find_embedding_at_position(db._tokenize(model, name), 0) == (db.word_embeddings[name], 1)
    db.register_embedding_by_name(db.word_embeddings["kept"], None, "outside")  # before a model: listed only
    assert "outside" in db.word_embeddings
