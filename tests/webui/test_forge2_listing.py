"""The forge2 adapter before Forge loads a model (it loads one only at the first generation): the listing and the
summary go by the selected checkpoint's family, read from its header. Fakes: ``forge_fakes`` (Forge ``main`` and Neo
layouts); the checkpoint is a real safetensors file holding only the text encoder's token table (zeros)."""

from __future__ import annotations

import types

import torch
from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors
from forge_fakes import forge  # noqa: F401  (the fixture)

from sd_embeddings.webui import api, console, entry
from sd_embeddings.webui.forge2 import Forge2Host

SD1_TOKENS = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"


def test_before_the_first_generation_the_listing_and_summary_follow_the_selected_checkpoint(forge, tmp_path,  # noqa: F811
                                                                                             monkeypatch):
    write_a1111_pt(forge.folder / "sd1emb.pt", vectors(2))
    write_safetensors(forge.folder / "xlemb.safetensors", sdxl_vectors(1))
    checkpoint = write_safetensors(tmp_path / "models" / "sd15.safetensors", {SD1_TOKENS: torch.zeros(4, 768)})
    sd_models = forge.modules["modules.sd_models"]
    sd_models.checkpoints_list["sd15.safetensors"] = types.SimpleNamespace(filename=str(checkpoint))
    entry.state.db = entry.state.original_db = entry.state.host = None
    monkeypatch.setattr(entry.state, "summary", console.SummaryPrinter())  # the line it last logged
    try:
        entry.register()
        # Forge's Api.__init__ (and its tab) first: a database of their own, loaded without syncing the model
        ti = forge.modules["modules.textual_inversion.textual_inversion"]
        ti.EmbeddingDatabase().load_textual_inversion_embeddings(force_reload=True, sync_with_sd_model=False)
        db = entry.ensure_scanned()  # the first scan, when the API or the tab asks
        listing = api.core_listing(db)
        assert set(listing["loaded"]) == {"sd1emb"} and set(listing["skipped"]) == {"xlemb"}
        assert entry.state.summary.last == "Textual inversion: 1 loaded, 1 incompatible (SDXL) — see the tab"
    finally:
        entry.uninstall()
        entry.state.db = entry.state.host = None


def test_forges_own_pick_comes_first(forge, tmp_path):  # noqa: F811
    """Once Forge's UI has picked a checkpoint (``forge_loading_parameters``), that file is the one it will load."""
    ui_pick = write_safetensors(tmp_path / "models" / "picked.safetensors", {SD1_TOKENS: torch.zeros(4, 768)})
    first = write_safetensors(tmp_path / "models" / "first.safetensors", {SD1_TOKENS: torch.zeros(4, 768)})
    sd_models = forge.modules["modules.sd_models"]
    sd_models.checkpoints_list["first.safetensors"] = types.SimpleNamespace(filename=str(first))
    assert Forge2Host().selected_checkpoint() == str(first)
    sd_models.model_data.forge_loading_parameters = {"checkpoint_info": types.SimpleNamespace(filename=str(ui_pick))}
    assert Forge2Host().selected_checkpoint() == str(ui_pick)
