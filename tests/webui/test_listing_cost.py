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
