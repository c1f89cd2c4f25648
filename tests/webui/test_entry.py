"""register()/uninstall, page swap, API listing and paste against the fake ``modules`` (conftest): fake
``script_callbacks`` (records callbacks), ``patches`` (WebUI semantics), ``ui_extra_networks`` (page list)."""

from __future__ import annotations

import sys
import types

import pytest
from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors

from sd_embeddings.webui import api, entry, first_scan, paste
from sd_embeddings.webui.a1111 import A1111Host
from sd_embeddings.webui.page import TITLE


@pytest.fixture
def registered(webui):
    webui.opts.data["sd_embeddings_watch"] = False
    original = webui.hijack.embedding_db
    original.embedding_dirs = {str(webui.folder): None}
    entry.state.db = entry.state.original_db = entry.state.host = None
    entry.register()
    yield types.SimpleNamespace(webui=webui, original=original)
    if first_scan.thread is not None:  # started by the before_ui callback; never outlives its test
        first_scan.thread.join(60)
        first_scan.thread = None
    entry.uninstall()
    entry.state.db = entry.state.host = None


def test_register_swaps_db_and_patches_once_and_unload_restores(registered):
    """Fakes: sd_hijack.model_hijack, sd_hijack_clip's tokenize_line class, processing.StableDiffusionProcessing."""
    webui = registered.webui
    clip = webui.line_owner
    processing = webui.modules["modules.processing"].StableDiffusionProcessing
    db = webui.hijack.embedding_db
    assert db is entry.state.db and db.library.folders == [str(webui.folder)]  # not the extension's own folder
    assert isinstance(entry.state.host, A1111Host)
    patched = clip.tokenize_line
    assert patched.__wrapped__ is not None
    entry.register()  # Reload UI without unload: no double patch, same database
    assert clip.tokenize_line is patched and webui.hijack.embedding_db is db
    assert {"before_ui", "app_started", "infotext_pasted", "script_unloaded"} <= set(webui.callbacks)
    for callback in webui.callbacks["script_unloaded"]:
        callback()
    assert webui.hijack.embedding_db is registered.original
    assert not hasattr(clip.tokenize_line, "__wrapped__")
    assert not hasattr(processing.cached_params, "__wrapped__")
    entry.install()
    assert webui.hijack.embedding_db is db


def test_page_replaces_builtin_in_place(registered):
    """Fakes: ui_extra_networks.extra_pages with the built-in TI page between two others."""
    webui = registered.webui
    page_base = webui.modules["modules.ui_extra_networks"].ExtraNetworksPage
    webui.pages[:] = [page_base("Lora"), page_base(TITLE), page_base("Checkpoints")]
    write_a1111_pt(webui.folder / "sub" / "cardemb.pt", vectors(1))
    for callback in webui.callbacks["before_ui"]:
        callback()
    assert [p.title for p in webui.pages] == ["Lora", TITLE, "Checkpoints"]
    ours = webui.pages[1]
    assert type(ours).__name__ == "TextualInversionPage" and ours.allow_negative_prompt
    assert ours.allowed_directories_for_previews()[0] == str(webui.folder)


def test_api_listing_keeps_shape_and_adds_fields(registered):
    """Fakes: SD1 model; the WebUI's five EmbeddingItem fields come first, ours are additions."""
    webui = registered.webui
    write_a1111_pt(webui.folder / "one.pt", vectors(2))
    write_safetensors(webui.folder / "xl.safetensors", sdxl_vectors(1))
    webui.load_model(768)
    db = entry.database()
    db.load_textual_inversion_embeddings(force_reload=True)
    listing = api.core_listing(db)
    one = listing["loaded"]["one"]
    assert list(one)[:5] == ["step", "sd_checkpoint", "sd_checkpoint_name", "shape", "vectors"]
    assert one["shape"] == 768 and one["vectors"] == 2 and one["step"] == 100 and one["family"] == "sd1"
    assert "reason" not in one and "filename" not in one  # our own listing has the path
    assert listing["skipped"]["xl"]["family"] == "sdxl" and "SDXL" in listing["skipped"]["xl"]["reason"]
    full = db.library.ensure_hash(db.library.find(db.word_embeddings["one"].filename))
    assert api.core_listing(db)["loaded"]["one"]["shorthash"] == full[:12]
    own = api.own_listing(db)
    assert own["model_family"] == "sd1" and {r["keyword"] for r in own["embeddings"]} >= {"one", "xl"}


def generate(webui, cls_name: str, prompts: list[str], negative: list[str],
             hires: tuple[list[str], list[str]] | None = None) -> types.SimpleNamespace:
    """One batch as ``process_images_inner`` runs it: ``Script.process``, ``Script.process_batch``, ``setup_conds``
    (the hijack's parameters merged into ``p``), ``Script.postprocess_batch``; returns ``p`` with ``comments``."""
    p = getattr(webui.modules["modules.processing"], cls_name)()
    p.prompts, p.negative_prompts = prompts, negative
    p.hr_prompts, p.hr_negative_prompts = hires or (prompts, negative)
    p.extra_generation_params, p.comments = {}, []
    p.comment = p.comments.append
    webui.hijack.extra_generation_params = {}  # clear_comments()
    entry.before_generation(p)
    entry.before_batch(p)
    p.setup_conds()
    p.extra_generation_params.update(webui.hijack.extra_generation_params)
    entry.after_batch(p)
    return p


def test_after_batch_writes_ti_hashes_once_also_on_a_cache_hit(registered):
    """Fakes: processing and chunker; the WebUI's forward writes the duplicated value, the second generation of
    the same prompts is a conditioning cache hit (nothing encoded) and keeps the value."""
    webui = registered.webui
    write_a1111_pt(webui.folder / "neg.pt", vectors(1))
    write_a1111_pt(webui.folder / "pos.pt", vectors(1, seed=2))
    model = webui.load_model(768)
    db = entry.database()
    db.load_textual_inversion_embeddings()
    neg, pos = (db.word_embeddings[name].shorthash for name in ("neg", "pos"))
    first = generate(webui, "StableDiffusionProcessingImg2Img", ["cat pos", "pos dog"], ["neg, neg", "neg pos"])
    assert first.extra_generation_params["TI hashes"] == f"pos: {pos}, neg: {neg}"
    calls = len(model.cond_stage_model.calls)
    again = generate(webui, "StableDiffusionProcessingImg2Img", ["cat pos", "pos dog"], ["neg, neg", "neg pos"])
    assert len(model.cond_stage_model.calls) == calls  # a cache hit: the WebUI encoded nothing
    assert "TI hashes" not in webui.hijack.extra_generation_params or \
        webui.hijack.extra_generation_params["TI hashes"] == f"pos: {pos}, neg: {neg}"
    assert again.extra_generation_params["TI hashes"] == f"pos: {pos}, neg: {neg}"
    webui.opts.textual_inversion_add_hashes_to_infotext = False
    off = generate(webui, "StableDiffusionProcessingImg2Img", ["pos only"], ["neg only"])
    assert "TI hashes" not in off.extra_generation_params


def test_a_stale_ti_hashes_value_is_removed_when_no_embedding_was_used(registered):
    """reForge's conditioning cache refills the hijack's parameters of the generation that filled the entry
    (``cache[2]``): a hit on the same negative prompt brought back ``TI hashes`` of embeddings that generation's
    positive prompt used (seen live on reForge: ``a cat, embedding:nosuchemb`` listed ``negemb``). Fakes:
    processing; the stale value is put where the refill puts it, before ``setup_conds``."""
    webui = registered.webui
    write_a1111_pt(webui.folder / "pos.pt", vectors(1))
    webui.load_model(768)
    entry.database().load_textual_inversion_embeddings()
    p = webui.modules["modules.processing"].StableDiffusionProcessingImg2Img()
    p.prompts, p.negative_prompts = ["a cat"], ["blurry"]
    p.hr_prompts, p.hr_negative_prompts = p.prompts, p.negative_prompts
    p.extra_generation_params, p.comments = {}, []
    p.comment = p.comments.append
    webui.hijack.extra_generation_params = {"TI hashes": "pos: 0123456789ab"}  # the cache's refill
    entry.before_generation(p)
    entry.before_batch(p)
    p.setup_conds()
    p.extra_generation_params.update(webui.hijack.extra_generation_params)
    entry.after_batch(p)
    assert "TI hashes" not in p.extra_generation_params and "TI hashes" not in webui.hijack.extra_generation_params


def test_a_refiners_second_setup_conds_adds_to_the_batch_record(registered):
    """Fakes: processing; the refiner switch calls ``p.setup_conds()`` again in the same batch (with the refiner's
    model, so other cache keys): the batch's ``TI hashes`` keep the first encoding's embeddings too."""
    webui = registered.webui
    write_a1111_pt(webui.folder / "pos.pt", vectors(1))
    write_a1111_pt(webui.folder / "pos2.pt", vectors(1, seed=2))
    webui.load_model(768)
    db = entry.database()
    db.load_textual_inversion_embeddings()
    p = generate(webui, "StableDiffusionProcessingImg2Img", ["cat pos"], ["blurry"])
    p.prompts, p.steps = ["cat pos2"], 21  # the refiner's conditioning (the fake keys on prompts and steps)
    p.setup_conds()
    entry.after_batch(p)
    pos, pos2 = (db.word_embeddings[name].shorthash for name in ("pos", "pos2"))
    assert p.extra_generation_params["TI hashes"] == f"pos2: {pos2}, pos: {pos}"
    entry.before_batch(p)  # the next batch of the same generation starts afresh
    p.prompts, p.extra_generation_params = ["dog"], {}
    p.setup_conds()
    entry.after_batch(p)
    assert "TI hashes" not in p.extra_generation_params


def test_one_tokenization_per_prompt_text(registered, monkeypatch):
    """Fakes: the WebUI's tokenizer counts its calls. A txt2img generation with hires prompts, embeddings, an
    incompatible keyword and a near-miss: each prompt text is tokenized exactly once (by the WebUI's own chunker),
    ``TI hashes`` and the warnings come from that, and the bundled tokenizer is never used."""
    from sd_embeddings.prompt import tokenizer

    webui = registered.webui
    write_a1111_pt(webui.folder / "EasyNegative.pt", vectors(2))
    write_a1111_pt(webui.folder / "style.pt", vectors(1, seed=2))
    write_safetensors(webui.folder / "xlonly.safetensors", sdxl_vectors(1))
    model = webui.load_model(768)
    entry.database().load_textual_inversion_embeddings()
    bundled_calls: list[str] = []
    encode = tokenizer.ClipTokenizer.encode
    monkeypatch.setattr(tokenizer.ClipTokenizer, "encode", lambda self, text: bundled_calls.append(text) or
                        encode(self, text))
    model.cond_stage_model.calls.clear()
    texts = {"prompts": ["a style cat", "xlonly dog"], "negative": ["EasyNegative", "Easy_Negative, blurry"],
             "hires": ["a style cat, detailed"], "hires_negative": ["EasyNegative, lowres"]}
    p = generate(webui, "StableDiffusionProcessingTxt2Img", texts["prompts"], texts["negative"],
                 (texts["hires"], texts["hires_negative"]))
    tokenized = [text for call in model.cond_stage_model.calls for text in call]
    prompt_texts = [text for group in texts.values() for text in group]
    assert sorted(text for text in tokenized if text in prompt_texts) == sorted(prompt_texts)  # once each
    # the only other calls: an unusable keyword's ids, bare and as ComfyUI's embedding:name spellings
    assert set(tokenized) - set(prompt_texts) <= {"xlonly", "embedding:xlonly", "embedding:xlonly.safetensors"}
    assert bundled_calls == []
    assert "style: " in p.extra_generation_params["TI hashes"] and "EasyNegative: " in \
        p.extra_generation_params["TI hashes"]
    assert len(p.comments) == 3  # "style" is also a common English word used as an embedding (a third line)
    assert any("'xlonly' stays plain text" in c for c in p.comments)
    assert any("'style' is a common English word" in c for c in p.comments)
    assert any("'Easy_Negative' stays plain text; did you mean the embedding 'EasyNegative'" in c for c in p.comments)


def test_warnings_come_after_the_batch_and_follow_the_setting(registered):
    """Fakes: p.comment collecting lines; SD1 model with an SDXL file; no WebUI embeddings folder."""
    webui = registered.webui
    write_safetensors(webui.folder / "xlonly.safetensors", sdxl_vectors(1))
    webui.load_model(768)
    webui.modules["modules.shared"].cmd_opts.embeddings_dir = str(webui.folder.parent / "missing")
    p = generate(webui, "StableDiffusionProcessingImg2Img", ["xlonly cat"], [""])
    assert len(p.comments) == 1 and "'xlonly' stays plain text" in p.comments[0] and "SDXL" in p.comments[0]
    webui.opts.data["sd_embeddings_diagnostics"] = False
    assert generate(webui, "StableDiffusionProcessingImg2Img", ["xlonly cow"], [""]).comments == []


def test_paste_reports_missing_renamed_changed(registered, monkeypatch, caplog):
    """Fakes: ``gradio`` 3.41 with only ``Warning`` (records toasts); params as the WebUI's paste parser makes them."""
    webui = registered.webui
    toasts: list[str] = []
    monkeypatch.setitem(sys.modules, "gradio", types.SimpleNamespace(Warning=toasts.append, __version__="3.41.2"))
    write_a1111_pt(webui.folder / "kept.pt", vectors(1))
    write_a1111_pt(webui.folder / "newname.pt", vectors(1, seed=3))
    webui.load_model(768)
    db = entry.database()
    db.load_textual_inversion_embeddings()
    renamed_hash = db.word_embeddings["newname"].shorthash
    params = {"Prompt": "a OldName, kept, oldname2, my-oldname", "Negative prompt": "(oldname:1.2)",
              "TI hashes": f"kept: 000000000000, oldname: {renamed_hash}, gone: 123456789abc"}
    for callback in webui.callbacks["infotext_pasted"]:
        callback("", params)
    assert params["Prompt"] == "a newname, kept, oldname2, my-oldname"  # whole words only, any case
    assert params["Negative prompt"] == "(newname:1.2)"
    expected = ("Textual inversion: missing: gone; different file with the same name: kept; "
                "renamed (prompt updated): oldname -> newname")
    assert toasts == [expected] and expected in caplog.text


def test_paste_is_quiet_when_everything_is_here(registered, monkeypatch):
    """Fakes: ``gradio`` with only ``Warning``; the pasted value is a whole quoted infotext item."""
    webui = registered.webui
    toasts: list[str] = []
    monkeypatch.setitem(sys.modules, "gradio", types.SimpleNamespace(Warning=toasts.append, __version__="3.41.2"))
    write_a1111_pt(webui.folder / "kept.pt", vectors(1))
    webui.load_model(768)
    db = entry.database()
    db.load_textual_inversion_embeddings()
    params = {"Prompt": "kept", "TI hashes": f"kept: {db.word_embeddings['kept'].shorthash}"}
    assert [r.status for r in paste.on_infotext_pasted(db.library, params)] == ["ok"]
    assert params["Prompt"] == "kept" and toasts == []
    assert paste.on_infotext_pasted(db.library, {"Prompt": "kept"}) is None


def test_setup_conds_leaves_deduplicated_ti_hashes_for_params_txt(registered):
    """Fakes: processing's ``setup_conds`` (base and the txt2img override that adds hires conds) writing the WebUI's
    repeated ``TI hashes`` into ``model_hijack.extra_generation_params``; the test then merges that dict into
    ``p.extra_generation_params`` as ``process_images_inner`` does right before it writes ``params.txt``."""
    webui = registered.webui
    processing = webui.modules["modules.processing"]
    write_a1111_pt(webui.folder / "neg.pt", vectors(1))
    write_a1111_pt(webui.folder / "pos.pt", vectors(1, seed=2))
    webui.load_model(768)
    db = entry.database()
    db.load_textual_inversion_embeddings()
    neg, pos = (db.word_embeddings[name].shorthash for name in ("neg", "pos"))
    expected = f"pos: {pos}, neg: {neg}"

    def generate(cls):
        p = cls()
        p.prompts, p.negative_prompts = ["cat pos"], ["neg"]
        p.hr_prompts, p.hr_negative_prompts = ["dog pos"], ["neg"]
        p.extra_generation_params = {}
        webui.hijack.extra_generation_params = {}  # clear_comments()
        p.setup_conds()
        p.extra_generation_params.update(webui.hijack.extra_generation_params)
        return p.extra_generation_params.get("TI hashes")

    assert generate(processing.StableDiffusionProcessingTxt2Img) == expected
    assert generate(processing.StableDiffusionProcessingImg2Img) == expected
    webui.opts.textual_inversion_add_hashes_to_infotext = False
    assert generate(processing.StableDiffusionProcessingTxt2Img) is None
    webui.opts.textual_inversion_add_hashes_to_infotext = True

    entry.uninstall()  # the WebUI's own, repeated value again
    assert not hasattr(processing.StableDiffusionProcessing.setup_conds, "__wrapped__")
    assert not hasattr(processing.StableDiffusionProcessingTxt2Img.setup_conds, "__wrapped__")
    webui.hijack.embedding_db = db  # stands in for the WebUI's database, which finds the same files
    assert generate(processing.StableDiffusionProcessingTxt2Img) == f"pos: {pos}, neg: {neg}, pos: {pos}, neg: {neg}"
    webui.hijack.embedding_db = registered.original
    entry.install()


def test_setup_conds_failure_keeps_the_webui_value(registered, monkeypatch):
    """Fakes: processing's ``setup_conds``; the embedding lookup breaks, the generation goes on."""
    webui = registered.webui
    processing = webui.modules["modules.processing"]
    write_a1111_pt(webui.folder / "neg.pt", vectors(1))
    webui.load_model(768)
    entry.database().load_textual_inversion_embeddings()
    monkeypatch.setattr(entry.generation, "ti_hashes", lambda *a: 1 / 0)
    p = processing.StableDiffusionProcessingImg2Img()
    p.prompts, p.negative_prompts = ["neg"], ["neg"]
    webui.hijack.extra_generation_params = {}
    p.setup_conds()
    assert webui.hijack.extra_generation_params["TI hashes"].startswith("neg: ")


def test_register_on_a_webui_without_the_hooks_leaves_everything_alone(webui, monkeypatch, caplog):
    """Fakes a WebUI fork without ``modules.sd_hijack_clip`` (Forge moved prompt processing elsewhere): one
    warning, no database swap, no callbacks, nothing patched."""
    original = webui.hijack.embedding_db
    entry.state.db = entry.state.original_db = None
    monkeypatch.setitem(sys.modules, "modules.sd_hijack_clip", None)  # "import modules.sd_hijack_clip" fails
    monkeypatch.delattr(sys.modules["modules"], "sd_hijack_clip", raising=False)
    with caplog.at_level("WARNING"):
        entry.register()
    assert webui.hijack.embedding_db is original
    assert "stays inactive" in caplog.text
    assert not any(webui.callbacks.values())
