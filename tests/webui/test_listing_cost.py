"""What the API and the tab cost at start: no hashing, no per-file reads for the page, a family known before the
model loads. Fakes (conftest): the WebUI's ``modules``; the checkpoint is a real safetensors file holding only
tensor names of the text encoder (random weights)."""

from __future__ import annotations

import os
import types

import torch
from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors

from sd_embeddings.webui import api, page


def test_the_listing_never_hashes_a_file(webui):
    write_a1111_pt(webui.folder / "one.pt", vectors(2))
    webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    listing = api.core_listing(db)
    assert "shorthash" not in listing["loaded"]["one"]
    assert db.library.find(webui.folder / "one.pt").sha256 is None


def test_before_the_model_loads_the_listing_follows_the_selected_checkpoints_family(webui, tmp_path):
    write_a1111_pt(webui.folder / "sd1emb.pt", vectors(2))
    write_safetensors(webui.folder / "xlemb.safetensors", sdxl_vectors(1))
    checkpoint = write_safetensors(tmp_path / "models" / "xl-base.safetensors", {
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": torch.zeros(4, 768),
        "conditioner.embedders.1.model.token_embedding.weight": torch.zeros(4, 1280)})
    webui.modules["modules.sd_models"].checkpoint_aliases["xl-base"] = types.SimpleNamespace(
        filename=str(checkpoint))
    webui.opts.sd_model_checkpoint = "xl-base"
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    listing = api.core_listing(db)
    assert set(listing["loaded"]) == {"xlemb"} and set(listing["skipped"]) == {"sd1emb"}
    assert db.expected_shape == 2048 and listing["skipped"]["sd1emb"]["family"] == "sd1"
    webui.load_model(768)  # the model that loads is an SD1 one after all: the real family wins
    db.load_textual_inversion_embeddings()
    assert set(db.word_embeddings) == {"sd1emb"}


def test_the_page_reads_no_file_per_embedding_to_render(webui, monkeypatch):
    """``page.items`` is made on use: rendering the pane reads nothing per embedding beyond the first cards (each
    item reads its description file, counted here)."""
    for i in range(80):
        write_safetensors(webui.folder / f"emb{i}.safetensors", {"emb_params": vectors(1, seed=i)})
    db = webui.make_db()
    base = webui.modules["modules.ui_extra_networks"].ExtraNetworksPage
    ours = page.page_class(base)(lambda: db)
    made: list[str] = []
    real = page.sidecars.text_description
    monkeypatch.setattr(page.sidecars, "text_description", lambda entry: made.append(entry.path) or real(entry))
    ours.lister = types.SimpleNamespace(reset=lambda: None)
    ours.read_user_metadata = lambda item: None
    ours.search_terms_from_path = lambda path: path
    ours.find_description = lambda path: None
    ours.get_sort_keys = lambda path: {}
    ours.create_html("txt2img")
    assert made == [] and len(ours.items) == 80
    assert ours.items["emb7"]["name"] == "emb7" and len(made) == 1
    assert ours.items.get("nothing") is None


def test_the_per_generation_check_without_a_complete_watcher_stats_at_most_its_budget(webui, monkeypatch):
    """No watcher (as on a network folder): each generation's check does at most ``poll.budget`` stats, however
    many folders there are, and a new file is still found within a few generations."""
    for i in range(12):
        write_safetensors(webui.folder / f"f{i}" / f"e{i}.safetensors", {"emb_params": vectors(1, seed=i)})
    webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    db.poll.budget = 4
    real_stat, calls = os.stat, []
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: calls.append(path) or real_stat(path, *a, **k))
    for _ in range(5):
        before = len(calls)
        db.load_textual_inversion_embeddings()
        assert len(calls) - before <= 4
    write_safetensors(webui.folder / "f7" / "new.safetensors", {"emb_params": vectors(1)})
    for _ in range(7):  # 13 folders, 2 per generation
        db.load_textual_inversion_embeddings()
    assert "new" in db.word_embeddings


def test_the_listing_answers_while_the_first_scan_is_still_reading(webui, monkeypatch):
    """10,000 files take seconds to scan cold; the API answers at once with the files read so far (and says it
    is still scanning), never waiting for the rest. The scan is held after its third file until the listings
    have answered: a listing that waited for the scan would never return (caught by the join below)."""
    import threading

    from sd_embeddings.library import library as library_module
    from sd_embeddings.webui import first_scan

    for name in ("a1", "a2", "a3", "b1", "b2"):
        write_a1111_pt(webui.folder / f"{name}.pt", vectors(2))
    write_safetensors(webui.folder / "a0xl.safetensors", sdxl_vectors(1))
    db = webui.make_db()
    real, read, held, release = library_module.read_entry, [], threading.Event(), threading.Event()

    def read_entry(item, *args):
        if len(read) == 3:
            held.set()
            release.wait(60)
        read.append(item.name)
        return real(item, *args)

    monkeypatch.setattr(library_module, "read_entry", read_entry)
    scan = first_scan.begin(db)
    assert held.wait(60)
    answers: list[dict] = []
    asking = threading.Thread(target=lambda: answers.extend([api.core_listing(db, wait=0), api.own_listing(db, 0)]))
    asking.start()
    asking.join(60)
    release.set()
    scan.join(60)
    assert not asking.is_alive() and len(answers) == 2, "a listing waited for the first scan"
    core, own = answers
    assert core["scanning"] is True and sorted(core["loaded"]) == ["a0xl", "a1", "a2"]  # no model: all fit
    assert core["loaded"]["a1"]["vectors"] == 2 and core["loaded"]["a0xl"]["family"] == "sdxl"
    assert own["scanning"] is True and len(own["embeddings"]) == 3
    listing = api.core_listing(db)
    assert "scanning" not in listing and sorted(listing["loaded"]) == ["a0xl", "a1", "a2", "a3", "b1", "b2"]
    assert api.own_listing(db)["scanning"] is False


def test_a_refresh_runs_no_garbage_collection_pass(webui):
    """A rebuild makes tens of thousands of small objects at 10,000 files; the collector's passes they trigger
    walk ever older generations, up to the WebUI's whole heap (the model, gradio), and cost more than the rebuild
    itself. Counted through ``gc.callbacks`` (no other thread runs here): at most the one pass over the young
    objects when the collector resumes."""
    import gc
    import threading

    for i in range(300):
        write_safetensors(webui.folder / f"g{i % 3}" / f"e{i}.safetensors", {"emb_params": vectors(1, seed=i)})
    webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    for thread in threading.enumerate():  # 300 names are tokenized on a thread of their own: let it finish
        if thread.name.startswith("sd-embeddings-tokens"):
            thread.join(60)
    write_safetensors(webui.folder / "g1" / "new.safetensors", {"emb_params": vectors(1)})
    passes: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            passes.append(info["generation"])


    gc.callbacks.append(count)
    try:
        db.load_textual_inversion_embeddings(force_reload=True)
    finally:
        gc.callbacks.remove(count)
    assert "new" in db.word_embeddings and len(passes) <= 1  # the one the collector may run on resuming


def test_the_first_scan_hands_the_memory_it_freed_back(webui, monkeypatch):
    """The first scan reads every header beside the WebUI's model load; what it freed is handed back at its end
    (``bulk.release_memory``), or the process keeps it resident for good."""
    from sd_embeddings.webui import first_scan

    write_a1111_pt(webui.folder / "one.pt", vectors(1))
    released: list[int] = []
    monkeypatch.setattr(first_scan, "release_memory", lambda: released.append(1) or True)
    db = webui.make_db()
    first_scan.begin(db).join(60)
    assert db.scanned and released == [1]
