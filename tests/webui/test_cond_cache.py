"""The conditioning cache key's embedding part (``cond_cache.TablesState``): a library change that no prompt can
match keeps the WebUI's cached conditioning; a change a prompt reads re-encodes it.

Fakes (conftest): the WebUI's chunker, ``cached_params``/``get_conds_with_caching`` (one-entry caches compared with
``==``) and model. The tokenizer is the real CLIP BPE (``prompt.tokenizer.bundled``), so names and prompts get the
ids they get inside the WebUI. Each case runs through the database's incremental table update and, with
``table_update.update`` refusing (``rebuild``), through the full rebuild that diffs the tables.
"""

from __future__ import annotations

import pytest
from factories import vectors, write_a1111_pt, write_safetensors

from sd_embeddings.prompt.tokenizer import bundled
from sd_embeddings.webui import cond_cache, generation, table_update, usage


@pytest.fixture(params=["incremental", "rebuild"])
def encoder(request, webui, monkeypatch):
    """``generate(prompt, negative)`` -> (lines encoded by the fake model, the generation's record)."""
    if request.param == "rebuild":
        monkeypatch.setattr(table_update, "update", lambda db, model: False)
    write_a1111_pt(webui.folder / "usedemb.pt", vectors(2))
    for i in range(5):
        write_a1111_pt(webui.folder / f"group{i}" / f"other{i}.pt", vectors(1, seed=i))
    model = webui.load_model(768)
    clip = bundled()
    model.cond_stage_model.tokenize = lambda texts: [clip.encode(text) for text in texts]
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    recorder, encoded = usage.Recorder(), []

    def record(text, chunks, id_end, reads):
        encoded.append(text)
        recorder.line(text, chunks, id_end, reads)

    cond_class = type(model.cond_stage_model)
    fix_type = webui.modules["modules.sd_hijack_clip"].PromptChunkFix
    processing = webui.modules["modules.processing"]
    base = processing.StableDiffusionProcessing
    monkeypatch.setattr(cond_class, "tokenize_line", generation.tokenize_line_with_fix(
        cond_class.tokenize_line, lambda: True, fix_type, record))
    monkeypatch.setattr(base, "cached_params", generation.cached_params_with_embeddings(
        base.cached_params, lambda: cond_cache.TablesState(db.clock, db.version), recorder.conditioning))

    def generate(prompt: str, negative: str = "lowres") -> tuple[list[str], usage.GenerationUsage]:
        db.load_textual_inversion_embeddings(force_reload=True)  # what the WebUI does before each generation
        encoded.clear()
        p = processing.StableDiffusionProcessing()
        p.prompts, p.negative_prompts = [prompt], [negative]
        recorder.begin(p)
        p.setup_conds()
        recorder.end()
        used = usage.usage_of(p).embeddings()
        # whatever was cached or encoded, it is what the tables hold now
        assert all(db.word_embeddings.get(e.name) is e for e in used), [e.name for e in used]
        return list(encoded), usage.usage_of(p)

    generate.db = db
    return generate


def names(record: usage.GenerationUsage) -> list[str]:
    return [embedding.name for embedding in record.embeddings()]


def test_a_drop_no_prompt_can_match_keeps_the_cached_conditioning(encoder, webui):
    assert encoder("a photo of usedemb")[0] == ["lowres", "a photo of usedemb"]
    assert encoder("a photo of usedemb")[0] == []
    version = encoder.db.version
    write_a1111_pt(webui.folder / "group3" / "sub" / "dropped1795.pt", vectors(1))
    encoded, record = encoder("a photo of usedemb")
    assert encoder.db.version > version and "dropped1795" in encoder.db.word_embeddings  # the drop was taken in
    assert encoded == [] and names(record) == ["usedemb"]
    (webui.folder / "group3" / "sub" / "dropped1795.pt").unlink()
    assert encoder("a photo of usedemb")[0] == []


def test_a_changed_used_file_re_encodes_only_the_prompt_that_uses_it(encoder, webui):
    encoder("a photo of usedemb")
    before = encoder.db.word_embeddings["usedemb"]
    write_a1111_pt(webui.folder / "usedemb.pt", vectors(3, seed=7))  # another size: a new stamp
    encoded, record = encoder("a photo of usedemb")
    assert encoded == ["a photo of usedemb"]  # the negative prompt reads no bucket the change touched
    assert record.embeddings()[0] is not before and record.embeddings()[0].vectors == 3


def test_a_deleted_used_file_re_encodes(encoder, webui):
    encoder("a photo of usedemb")
    (webui.folder / "usedemb.pt").unlink()
    encoded, record = encoder("a photo of usedemb")
    assert encoded == ["a photo of usedemb"] and names(record) == []


def test_an_added_file_named_like_a_prompt_word_re_encodes(encoder, webui):
    encoder("a photo of usedemb with newword", "bad newword")
    write_safetensors(webui.folder / "group4" / "newword.safetensors", {"emb_params": vectors(1)})
    encoded, record = encoder("a photo of usedemb with newword", "bad newword")
    assert sorted(encoded) == ["a photo of usedemb with newword", "bad newword"]
    assert sorted(names(record)) == ["newword", "usedemb"]


def test_an_added_file_that_takes_a_used_name_re_encodes(encoder, webui):
    """A longer name starting with the used one: the WebUI's matcher prefers the longest at a position."""
    encoder("a photo of usedemb two")
    write_a1111_pt(webui.folder / "group1" / "usedemb two.pt", vectors(4))
    encoded, record = encoder("a photo of usedemb two")
    assert encoded == ["a photo of usedemb two"] and names(record) == ["usedemb two"]


def test_an_added_file_that_wins_a_used_name_re_encodes(encoder, webui):
    """Same keyword, the new file shallower: it wins the collision (``collisions.settle``)."""
    write_a1111_pt(webui.folder / "group2" / "deep" / "collide.pt", vectors(1))
    encoder("a collide photo")
    old = encoder.db.word_embeddings["collide"]
    write_a1111_pt(webui.folder / "collide.pt", vectors(2, seed=3))
    encoded, record = encoder("a collide photo")
    assert encoder.db.word_embeddings["collide"] is not old
    assert encoded == ["a collide photo"] and record.embeddings()[0].vectors == 2


def test_the_explicit_form_re_encodes_when_its_file_arrives(encoder, webui):
    encoder("a photo of embedding:later")
    write_a1111_pt(webui.folder / "group2" / "later.pt", vectors(1))
    encoded, record = encoder("a photo of embedding:later")
    assert encoded == ["a photo of embedding:later"] and names(record) == ["later"]


def test_a_state_that_read_nothing_vouches_for_nothing():
    """No fakes: two states of one clock. Unknown reads (no encoding seen) or reads through a matcher without the
    clock equal only the same version; known reads equal later versions until a read bucket changes."""
    clock = cond_cache.BucketClock()
    old, new = cond_cache.TablesState(clock, 1), cond_cache.TablesState(clock, 2)
    clock.touch(2, [500], 600)
    assert old == cond_cache.TablesState(clock, 1) and old != new
    old.add(cond_cache.Reads(clock, {320, 321}))
    assert old == new and new == old
    old.add(cond_cache.Reads(clock, {500}))
    assert old != new
    spoiled = cond_cache.TablesState(clock, 1)
    spoiled.add(cond_cache.Reads(None, set(), untracked=True))
    assert spoiled != new
    clock.touch(3, None, 600)
    fresh = cond_cache.TablesState(clock, 1)
    fresh.add(cond_cache.Reads(clock, set()))
    assert fresh != cond_cache.TablesState(clock, 3)
