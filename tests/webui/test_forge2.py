"""The forge2 adapter against the fake Forge (``forge_fakes``: Forge ``main`` and Neo layouts, each test runs on both):
one library-backed database under every engine, the tab and the API; infotext; pick-up; Reload UI; the opt-in shim."""

from __future__ import annotations

import logging
import sys
import types

import pytest
import torch
from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors
from forge_backend_fakes import torch_loads
from forge_fakes import forge  # noqa: F401  (the fixture)

from sd_embeddings.webui import api, entry
from sd_embeddings.webui.database import LibraryDatabase
from sd_embeddings.webui.forge2 import Forge2Host
from sd_embeddings.webui.forge2_engines import EngineDatabase, token_embedding


@pytest.fixture
def registered(forge):  # noqa: F811
    entry.state.db = entry.state.original_db = entry.state.host = None
    entry.register()
    yield forge
    entry.uninstall()
    entry.state.db = entry.state.host = None


def generate(forge, prompts: list[str], negative: list[str]) -> types.SimpleNamespace:  # noqa: F811
    """One txt2img batch as Forge's ``process_images_inner`` runs it: the model's parameters reset, ``Script.process``,
    ``process_batch``, ``setup_conds``, the model's parameters merged into ``p``, ``postprocess_batch``."""
    p = forge.modules["modules.processing"].StableDiffusionProcessingTxt2Img()
    p.prompts, p.negative_prompts, p.hr_prompts, p.hr_negative_prompts = prompts, negative, prompts, negative
    p.sd_model = forge.modules["modules.sd_models"].model_data.sd_model
    p.sd_model.extra_generation_params = {}
    p.extra_generation_params, p.comments = {}, []
    p.comment = p.comments.append
    entry.before_generation(p)
    entry.before_batch(p)
    p.setup_conds()
    p.extra_generation_params.update(p.sd_model.extra_generation_params)
    entry.after_batch(p)
    return p


def rows(conditioning: torch.Tensor, offset: int, count: int) -> torch.Tensor:
    """The rows a fix at ``offset`` (after the start token) wrote in the first prompt's first chunk."""
    return conditioning[0, offset + 1: offset + 1 + count]


def test_one_start_line_names_the_engine_class(registered, caplog):
    entry.uninstall()
    with caplog.at_level("INFO", logger="sd_embeddings"):
        entry.register()
    lines = [r.getMessage() for r in caplog.records if "adapter" in r.getMessage()]
    expected = {"forge": "backend.text_processing.classic_engine.ClassicTextProcessingEngine.tokenize_line",
                "neo": "backend.text_processing.sd_engine.ClipEngine.tokenize_line"}[registered.layout]
    assert lines == [f"Textual inversion (sd-embeddings): using the forge2 adapter ({expected})"]
    assert hasattr(registered.engine_class.tokenize_line, "__wrapped__")


def test_without_an_engine_module_one_line_says_what_both_adapters_looked_for(forge, monkeypatch, caplog):  # noqa: F811
    monkeypatch.delattr(forge.engine_module, "EmbeddingDatabase")
    entry.state.db = entry.state.host = None
    with caplog.at_level("WARNING"):
        entry.register()
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    message = record.getMessage()
    assert "no adapter fits this WebUI" in message and "a1111: modules.sd_hijack_clip" in message
    assert "forge2: backend.text_processing.classic_engine.ClassicTextProcessingEngine or " \
           "backend.text_processing.sd_engine.ClipEngine with tokenize_line" in message
    assert not any(forge.callbacks.values())
    entry.state.host = None


def test_every_engine_the_tab_and_the_api_share_one_database_and_nothing_is_torch_loaded(registered):
    """Forge's engines, tab module and API each build and load a database of their own (``torch.load`` on every
    file); after ``register`` all of them are the one library-backed database and no stock load runs."""
    write_a1111_pt(registered.folder / "sub" / "one.pt", vectors(1))
    model = registered.load_model("sdxl")
    db = entry.state.db
    for engine in model.engines():
        assert isinstance(engine.embeddings, EngineDatabase) and engine.embeddings.db is db
        assert token_embedding(engine).embeddings is engine.embeddings
    tab_db = registered.modules["modules.textual_inversion.textual_inversion"].EmbeddingDatabase()
    assert tab_db is db
    tab_db.load_textual_inversion_embeddings(force_reload=True, sync_with_sd_model=False)  # what Forge's API does
    assert torch_loads == []
    assert "one" in db.skipped_embeddings and "one" in model.text_processing_engine_g.embeddings.skipped_embeddings


def test_sdxl_engines_each_apply_their_vectors_and_the_sd1_file_stays_out(registered):
    xl = sdxl_vectors(2)
    write_safetensors(registered.folder / "xl" / "xlneg.safetensors", xl)
    write_a1111_pt(registered.folder / "sd1emb.pt", vectors(1))
    model = registered.load_model("sdxl")
    p = generate(registered, ["cat sd1emb"], ["xlneg blurry"])
    width_l = 768
    assert torch.equal(rows(p.uc, 0, 2)[:, :width_l], xl["clip_l"]) and torch.equal(rows(p.uc, 0, 2)[:, width_l:],
                                                                                     xl["clip_g"])
    assert model.text_processing_engine_l.embeddings.find_embedding_at_position([1], 0) == (None, None)
    shorthash = entry.state.db.word_embeddings["xlneg"].shorthash
    assert p.extra_generation_params["TI hashes"] == f"xlneg: {shorthash}"
    assert p.extra_generation_params["TI"] == "xlneg"  # Forge's own line: "xlneg, xlneg" (two engines)
    assert any("'sd1emb' stays plain text" in comment for comment in p.comments), p.comments


def test_ti_hashes_and_names_once_for_positive_and_negative_also_on_a_cache_hit(registered):
    write_a1111_pt(registered.folder / "neg.pt", vectors(1))
    write_a1111_pt(registered.folder / "pos.pt", vectors(1, seed=2))
    model = registered.load_model("sd1")
    first = generate(registered, ["cat pos", "pos dog"], ["neg, neg", "neg pos"])
    db = entry.state.db
    pos, neg = (db.word_embeddings[name].shorthash for name in ("pos", "neg"))
    assert first.extra_generation_params["TI hashes"] == f"pos: {pos}, neg: {neg}"
    assert first.extra_generation_params["TI"] == "pos, neg"  # Forge's own: the positive's only ("pos")
    calls = len(model.text_processing_engine.calls)
    again = generate(registered, ["cat pos", "pos dog"], ["neg, neg", "neg pos"])
    assert len(model.text_processing_engine.calls) == calls  # a cache hit: nothing encoded
    assert again.extra_generation_params["TI hashes"] == f"pos: {pos}, neg: {neg}"
    assert again.extra_generation_params["TI"] == "pos, neg"


def test_files_added_overwritten_and_deleted_in_sub_folders_are_used_by_the_next_generation(registered):
    """Forge never reloads (``# todo: reload ti``): each generation picks up the change, vectors included."""
    registered.load_model("sd1")
    assert "TI hashes" not in generate(registered, ["a dog, fresh"], ["x"]).extra_generation_params
    path = registered.folder / "new" / "deeper" / "fresh.safetensors"
    one = vectors(1, seed=5)
    write_safetensors(path, {"emb_params": one})
    p = generate(registered, ["fresh dog"], ["x"])
    assert p.extra_generation_params["TI"] == "fresh" and torch.equal(rows(p.c, 0, 1), one)
    two = vectors(2, seed=9)
    write_safetensors(path, {"emb_params": two})
    p = generate(registered, ["fresh dog"], ["x"])  # same prompt: the cache key holds the database version
    assert torch.equal(rows(p.c, 0, 2), two)
    assert p.extra_generation_params["TI hashes"] == f"fresh: {entry.state.db.word_embeddings['fresh'].shorthash}"
    path.unlink()
    assert "TI" not in generate(registered, ["fresh dog"], ["x"]).extra_generation_params


def test_a_model_loaded_before_register_is_re_pointed_and_unload_gives_forge_its_own_back(forge):  # noqa: F811
    """Reload UI keeps the model: its engines hold Forge's databases; register re-points them, unload restores
    the originals and the module names; an engine built through the factory gets an empty stock database."""
    model = forge.load_model("sd1")
    stock_db = model.text_processing_engine.embeddings
    entry.state.db = entry.state.original_db = entry.state.host = None
    entry.register()
    view = model.text_processing_engine.embeddings
    assert isinstance(view, EngineDatabase) and view.original is stock_db and view.expected_shape == 768
    assert token_embedding(model.text_processing_engine).embeddings is view
    built_by_us = forge.load_model("sd1")
    entry.uninstall()
    assert forge.engine_module.EmbeddingDatabase.__name__ == "StockEngineDatabase"
    assert forge.modules["modules.textual_inversion.textual_inversion"].EmbeddingDatabase.__name__ == \
        "TabEmbeddingDatabase"
    restored = built_by_us.text_processing_engine.embeddings
    assert type(restored).__name__ == "StockEngineDatabase" and restored.embedding_dirs
    assert token_embedding(built_by_us.text_processing_engine).embeddings is restored
    assert not hasattr(forge.engine_class.tokenize_line, "__wrapped__")
    entry.state.db = entry.state.host = None


def test_model_hijack_embedding_db_is_published_only_when_the_setting_says_so(registered):
    hijack, key = registered.hijack, "sd_embeddings_embedding_db_shim"
    assert not hasattr(hijack, "embedding_db")
    registered.opts.data[key] = True
    entry.install()  # the setting's onchange
    assert isinstance(hijack.embedding_db, LibraryDatabase) and hijack.embedding_db is entry.state.db
    registered.opts.data[key] = False
    entry.install()
    assert not hasattr(hijack, "embedding_db")
    registered.opts.data[key] = True
    entry.install()
    entry.uninstall()
    assert not hasattr(hijack, "embedding_db")
    entry.install()


def test_the_api_lists_from_the_shared_database_with_skipped_filled(registered):
    write_a1111_pt(registered.folder / "one.pt", vectors(2))
    write_safetensors(registered.folder / "xl.safetensors", sdxl_vectors(1))
    registered.load_model("sd1")
    listing = api.core_listing(entry.database())
    assert listing["loaded"]["one"]["family"] == "sd1" and listing["loaded"]["one"]["vectors"] == 2
    assert "SDXL" in listing["skipped"]["xl"]["reason"]


def test_an_embedding_right_after_the_last_comma_of_a_full_chunk_keeps_its_vectors(registered):
    """Forge's backtrack (20, hard-coded) moves the words after the last comma into the next chunk but leaves the
    embedding's fix behind; the fix moves it along (and the setting turns the fix off)."""
    emb = vectors(1, seed=3)
    write_safetensors(registered.folder / "late.safetensors", {"emb_params": emb})
    model = registered.load_model("sd1")
    prompt = " ".join(f"w{i}" for i in range(70)) + ", late " + " ".join(f"v{i}" for i in range(5))
    p = generate(registered, [prompt], ["x"])
    chunks, _ = model.text_processing_engine.tokenize_line(prompt)
    (fix,) = chunks[1].fixes
    assert chunks[0].fixes == [] and chunks[1].tokens[1 + fix.offset] == 0
    assert torch.equal(p.c[0, 77 + fix.offset + 1], emb[0])
    registered.opts.data["sd_embeddings_fix_comma_backtrack"] = False
    chunks, _ = model.text_processing_engine.tokenize_line(prompt)
    assert len(chunks[0].fixes) == 1 and chunks[1].fixes == []  # Forge's own result


def test_the_host_reads_the_primary_engine(forge, caplog):  # noqa: F811
    host = Forge2Host()
    assert host.current_model() is None  # FakeInitialModel before the first load
    model = forge.load_model("sdxl")
    assert host.current_model() is model and host.expected_shape(model) == 2048
    assert host.tokenize(model, ["a b"]) == [model.text_processing_engine_l.tokenize(["a b"])[0]]
    with caplog.at_level(logging.WARNING):
        assert host.probe().fits
    tables = host.token_embeddings(model)  # the inspector's nearest tokens: each engine's own table, by width
    assert sorted(tables) == [768, 1280]
    assert tables[1280] is token_embedding(model.text_processing_engine_g).wrapped.weight


def test_a_model_load_rebuilds_the_tables_once(registered):
    """Each engine Forge builds asks its database to load; that must not drop the family and rebuild for "no
    model" in between (SDXL builds two engines): the ``model_loaded`` callback's rebuild is the only one."""
    write_a1111_pt(registered.folder / "one.pt", vectors(1))
    registered.load_model("sd1")
    db = entry.state.db
    before = db.version
    registered.load_model("sdxl")
    assert db.version == before + 1 and db.model_family.value == "sdxl"


def test_embedding_name_syntax_and_the_bare_keywords_setting_reach_every_engine(registered):
    write_safetensors(registered.folder / "xl" / "xlneg.safetensors", sdxl_vectors(2))
    model = registered.load_model("sdxl")

    def placed(text: str) -> list[list[str]]:
        return [[fix.embedding.name for chunk in engine.tokenize_line(text)[0] for fix in chunk.fixes]
                for engine in model.engines()]

    registered.opts.data["sd_embeddings_bare_keywords"] = False
    entry.apply_bare_keywords_setting()
    assert placed("a cat, xlneg") == [[], []]
    assert placed("a cat, embedding:xl/xlneg.safetensors") == [["xlneg"], ["xlneg"]] == placed("embedding:xlneg")
    registered.opts.data["sd_embeddings_bare_keywords"] = True
    entry.apply_bare_keywords_setting()
    assert placed("a cat, xlneg") == [["xlneg"], ["xlneg"]]


def test_a_duplicates_own_name_means_the_keywords_file_in_every_engine(registered):
    """``old/deeper/xlneg.pt`` loses the keyword to ``xl/xlneg.safetensors`` (shallower); its own spellings mean the
    winner in each engine, as in the shared database (found live on Forge: the engines' tables had no aliases, so
    ``embedding:old/deeper/xlneg.pt`` stayed plain text)."""
    write_safetensors(registered.folder / "xl" / "xlneg.safetensors", sdxl_vectors(2))
    write_safetensors(registered.folder / "old" / "deeper" / "xlneg.safetensors", sdxl_vectors(3, seed=5))
    model = registered.load_model("sdxl")

    def placed(text: str) -> list[list[tuple[str, int]]]:
        return [[(fix.embedding.filename, fix.embedding.vectors) for chunk in engine.tokenize_line(text)[0]
                 for fix in chunk.fixes] for engine in model.engines()]

    winner = str(registered.folder / "xl" / "xlneg.safetensors")
    registered.opts.data["sd_embeddings_bare_keywords"] = False
    entry.apply_bare_keywords_setting()
    assert placed("a cat, embedding:old/deeper/xlneg.safetensors") == [[(winner, 2)], [(winner, 2)]]
    assert placed("a cat, embedding:xlneg.safetensors") == [[(winner, 2)], [(winner, 2)]]


def test_without_modules_sd_hijack_the_shim_setting_is_a_logged_no_op(forge, monkeypatch, caplog):  # noqa: F811
    """Neo removed ``modules/sd_hijack.py``: register still works, and switching the setting on says it does
    nothing rather than failing."""
    monkeypatch.delitem(sys.modules, "modules.sd_hijack")
    monkeypatch.delattr(forge.modules["modules"], "sd_hijack")
    forge.opts.data["sd_embeddings_embedding_db_shim"] = True
    entry.state.db = entry.state.original_db = entry.state.host = None
    with caplog.at_level("WARNING"):
        entry.register()
    assert isinstance(entry.state.host, Forge2Host)
    assert "no modules.sd_hijack" in caplog.text
    entry.uninstall()
    entry.state.db = entry.state.host = None
