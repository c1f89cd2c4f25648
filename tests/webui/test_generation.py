"""Prompt-path fixes, the per-generation record and TI hashes against the fake ``modules`` (conftest): fake chunker
(WebUI algorithm), fake ``StableDiffusionProcessing.cached_params``/``setup_conds``, fake tokenizer."""

from __future__ import annotations

import threading

from factories import vectors, write_a1111_pt, write_safetensors

from sd_embeddings.webui import generation, usage


def long_prompt_ending_with(keyword: str) -> str:
    # 68 words, a comma at 68, x1 x2, the 3-vector embedding at 71-73, x3 at 74: "tail" finds the chunk full
    return " ".join(f"w{i}" for i in range(68)) + ", x1 x2 " + keyword + " x3 tail"


def test_comma_backtrack_keeps_embedding_vectors(webui):
    """Fakes: tokenize_line following the WebUI (leaves the fix behind), PromptChunkFix."""
    write_a1111_pt(webui.folder / "myemb.pt", vectors(3))
    model = webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    cond = model.cond_stage_model
    line = long_prompt_ending_with("myemb")
    chunks, _ = cond.tokenize_line(line)
    assert chunks[0].fixes and not chunks[1].fixes  # the WebUI's bug: fix stranded over padding
    enabled, recorded = [True], []
    fix_type = webui.modules["modules.sd_hijack_clip"].PromptChunkFix
    fixed = generation.tokenize_line_with_fix(type(cond).tokenize_line, lambda: enabled[0], fix_type,
                                              lambda *args: recorded.append(usage.line_record(*args[:3])))
    chunks, _ = fixed(cond, line)
    assert not chunks[0].fixes
    (fix,) = chunks[1].fixes
    assert fix.embedding.name == "myemb"
    assert chunks[1].tokens[1 + fix.offset: 1 + fix.offset + 3] == [0, 0, 0]
    assert [c.tokens for c in chunks] == [c.tokens for c in cond.tokenize_line(line)[0]]  # same tokens as WebUI
    (record,) = recorded  # what the record keeps: the line's ids (embedding rows marked), the embedding placed
    assert [e.name for e in record.embeddings] == ["myemb"] and record.ids.count(usage.EMBEDDING_ROW) == 3
    assert len(record.ids) == 68 + 1 + 2 + 3 + 2  # words, comma, x1 x2, the embedding, x3 tail: no padding
    enabled[0] = False
    chunks, _ = fixed(cond, line)
    assert chunks[0].fixes and not chunks[1].fixes  # switch off = WebUI behaviour


def test_short_prompts_unchanged(webui):
    """Fakes: as above; a prompt that needs no back-tracking keeps its fixes where they are."""
    write_a1111_pt(webui.folder / "myemb.pt", vectors(2))
    model = webui.load_model(768)
    webui.make_db().load_textual_inversion_embeddings()
    cond = model.cond_stage_model
    fix_type = webui.modules["modules.sd_hijack_clip"].PromptChunkFix
    fixed = generation.tokenize_line_with_fix(type(cond).tokenize_line, lambda: True, fix_type, lambda *args: None)
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


def test_ti_hashes_once_per_embedding_from_what_was_encoded(webui):
    """Fakes: chunker and processing; the record is filled by the wrapped ``tokenize_line`` while ``cached_params``
    says which ``p`` is encoding (positive, negative and hires prompts), and hands the cached lines to a cache hit."""
    write_a1111_pt(webui.folder / "pos.pt", vectors(1))
    write_a1111_pt(webui.folder / "neg.pt", vectors(1))
    model = webui.load_model(768)
    db = webui.make_db()
    db.load_textual_inversion_embeddings()
    recorder = usage.Recorder()
    cond_class = type(model.cond_stage_model)
    processing = webui.modules["modules.processing"]
    fix_type = webui.modules["modules.sd_hijack_clip"].PromptChunkFix
    cond_class.tokenize_line = generation.tokenize_line_with_fix(cond_class.tokenize_line, lambda: True, fix_type,
                                                                 recorder.line)
    base = processing.StableDiffusionProcessing
    base.cached_params = generation.cached_params_with_embeddings(base.cached_params, lambda: None,
                                                                  recorder.conditioning)
    try:
        def generate():
            p = processing.StableDiffusionProcessingTxt2Img()
            p.prompts, p.negative_prompts = ["a pos and b pos", "pos"], ["neg, pos"]
            p.hr_prompts, p.hr_negative_prompts = ["a pos"], ["neg"]
            recorder.begin(p)
            p.setup_conds()
            recorder.end()
            return p

        first = generate()
        pos, neg = db.word_embeddings["pos"].shorthash, db.word_embeddings["neg"].shorthash
        assert generation.ti_hashes(usage.usage_of(first).embeddings()) == f"pos: {pos}, neg: {neg}"
        assert set(usage.usage_of(first).lines) == {"a pos and b pos", "pos", "neg, pos", "a pos", "neg"}
        calls = len(model.cond_stage_model.calls)
        again = generate()  # every conditioning is a cache hit: nothing is tokenized, the record is the same
        assert len(model.cond_stage_model.calls) == calls
        assert generation.ti_hashes(usage.usage_of(again).embeddings()) == f"pos: {pos}, neg: {neg}"
        cond = model.cond_stage_model
        recorder.conditioning(again, ("a key",))  # a generation is encoding on this thread...
        counter = threading.Thread(target=cond.tokenize_line, args=("token counter text",))
        counter.start()
        counter.join()  # ...and the WebUI's token counter tokenizes on another: not this generation's
        cond.tokenize_line("pos here")
        recorder.end()
        cond.tokenize_line("after the end")
        assert set(usage.usage_of(again).lines) == {"a pos and b pos", "pos", "neg, pos", "a pos", "neg", "pos here"}
    finally:
        cond_class.tokenize_line = cond_class.tokenize_line.__wrapped__
        base.cached_params = base.cached_params.__wrapped__


def test_an_encoded_line_wins_over_a_cached_record_and_the_first_encoding_stays():
    """No fakes needed: records built directly. A cache key's earlier record of a text gives way to an encoding of
    it in this batch; a second encoding of the same text (SDXL's second text encoder) does not replace the first."""
    cached = usage.LineRecord("a cat", (1, 2), ("old",))
    first = usage.LineRecord("a cat", (1, 3), ("new",))
    second = usage.LineRecord("a cat", (9, 9), ("other",))
    record = usage.GenerationUsage()
    record.add(cached, encoded=False)
    record.add(first)
    record.add(second)
    record.add(cached, encoded=False)
    assert record.lines == {"a cat": first}
