"""Prompt-path fixes and TI hashes against the fake ``modules`` (conftest): fake chunker (WebUI algorithm), fake
``StableDiffusionProcessing.cached_params``, fake tokenizer."""

from __future__ import annotations

import types

from factories import vectors, write_a1111_pt, write_safetensors

from sd_embeddings.webui import generation


def long_prompt_ending_with(keyword: str) -> str:
    # 68 words, a comma at 68, x1 x2, the 3-vector embedding at 71-73, x3 at 74: "tail" finds the chunk full
    return " ".join(f"w{i}" for i in range(68)) + ", x1 x2 " + keyword + " x3 tail"


def test_comma_backtrack_keeps_embedding_vectors(webui):
    """Fakes: TextConditionalModel.tokenize_line following the WebUI (leaves the fix behind), PromptChunkFix."""
    write_a1111_pt(webui.folder / "myemb.pt", vectors(3))
    model = webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    cond = model.cond_stage_model
    line = long_prompt_ending_with("myemb")
    chunks, _ = cond.tokenize_line(line)
    assert chunks[0].fixes and not chunks[1].fixes  # the WebUI's bug: fix stranded over padding
    enabled = [True]
    fixed = generation.tokenize_line_with_fix(type(cond).tokenize_line, lambda: enabled[0])
    chunks, _ = fixed(cond, line)
    assert not chunks[0].fixes
    (fix,) = chunks[1].fixes
    assert fix.embedding.name == "myemb"
    assert chunks[1].tokens[1 + fix.offset: 1 + fix.offset + 3] == [0, 0, 0]
    assert [c.tokens for c in chunks] == [c.tokens for c in cond.tokenize_line(line)[0]]  # same tokens as WebUI
    enabled[0] = False
    chunks, _ = fixed(cond, line)
    assert chunks[0].fixes and not chunks[1].fixes  # switch off = WebUI behaviour


def test_short_prompts_unchanged(webui):
    """Fakes: as above; a prompt that needs no back-tracking keeps its fixes where they are."""
    write_a1111_pt(webui.folder / "myemb.pt", vectors(2))
    model = webui.load_model(768)
    webui.make_db().load_textual_inversion_embeddings()
    cond = model.cond_stage_model
    fixed = generation.tokenize_line_with_fix(type(cond).tokenize_line, lambda: True)
    chunks, _ = fixed(cond, "a, myemb, b")
    assert [(f.offset, f.embedding.name) for f in chunks[0].fixes] == [(2, "myemb")]


def test_cache_key_changes_when_a_file_changes(webui):
    """Fakes: StableDiffusionProcessing.cached_params returning (prompts, steps)."""
    write_a1111_pt(webui.folder / "e.pt", vectors(1))
    webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    processing = webui.modules["modules.processing"].StableDiffusionProcessing
    wrapped = generation.cached_params_with_embeddings(processing.cached_params, lambda: db.version)
    before = wrapped(processing(), ["e"], 20)
    assert before == wrapped(processing(), ["e"], 20)
    write_safetensors(webui.folder / "sub" / "f.safetensors", {"emb_params": vectors(1)})
    db.load_textual_inversion_embeddings()
    assert wrapped(processing(), ["e"], 20) != before
    assert generation.cached_params_with_embeddings(processing.cached_params, lambda: None)(
        processing(), ["e"], 20) == (("e",), 20)


def test_ti_hashes_once_per_embedding(webui):
    """Fakes: tokenizer; p with prompts/negative/hires prompts as SimpleNamespace."""
    write_a1111_pt(webui.folder / "pos.pt", vectors(1))
    write_a1111_pt(webui.folder / "neg.pt", vectors(1))
    model = webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    p = types.SimpleNamespace(prompts=["a pos AND b pos", "pos"], negative_prompts=["neg, pos"],
                              hr_prompts=["a pos"], hr_negative_prompts=["neg"])
    used = generation.used_embeddings(db, model.cond_stage_model.tokenize, generation.generation_texts(p))
    value = generation.ti_hashes(used.values())
    pos, neg = db.word_embeddings["pos"].shorthash, db.word_embeddings["neg"].shorthash
    assert value == f"pos: {pos}, neg: {neg}"
