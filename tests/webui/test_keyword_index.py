"""The database's keyword index: token ids kept across starts, one-pass buckets, tokenizing off the model load.

Fakes (conftest): the model's whitespace tokenizer records every ``tokenize`` call, so work is counted, not timed.
"""

from __future__ import annotations

import threading

import pytest
from factories import vectors, write_safetensors

from sd_embeddings.library import Library
from sd_embeddings.webui import keyword_index
from sd_embeddings.webui.database import LibraryDatabase
from sd_embeddings.webui.keyword_index import build_lookup
from sd_embeddings.webui.tokens import PROBES, TokenTable


def names_tokenized(model) -> list[str]:
    """Every name the fake tokenizer was asked for, the fingerprint's probe texts left out."""
    return [text for call in model.cond_stage_model.calls for text in call if text not in PROBES]


def make_db(webui, table: TokenTable) -> LibraryDatabase:
    db = LibraryDatabase(Library([], background_hashing=False), tokens=table)
    db.add_embedding_dir(str(webui.folder))
    webui.hijack.embedding_db = db
    return db


def library_of(webui, count: int) -> None:
    for i in range(count):
        write_safetensors(webui.folder / f"g{i % 3}" / f"emb{i}.safetensors", {"emb_params": vectors(1, seed=i)})


def test_a_restart_tokenizes_no_name_and_a_refresh_with_nothing_changed_rebuilds_nothing(webui, tmp_path):
    library_of(webui, 12)
    model = webui.load_model(768)
    table_file = tmp_path / "cache" / "tokens.json"
    first = make_db(webui, TokenTable(table_file))
    first.load_textual_inversion_embeddings(force_reload=True)
    names = names_tokenized(model)  # each keyword once, and the embedding:name spellings
    assert all(names.count(f"emb{i}") == 1 for i in range(12))
    first.index.table.save()
    version = first.version
    first.load_textual_inversion_embeddings(force_reload=True)  # the WebUI's refresh, nothing changed
    assert first.version == version and names_tokenized(model) == names

    model = webui.load_model(768)  # a restart: new process, new model object, same tokenizer
    second = make_db(webui, TokenTable(table_file))
    second.load_textual_inversion_embeddings(force_reload=True)
    assert names_tokenized(model) == []
    tokens = second._tokenize(model, "emb7")
    assert second.find_embedding_at_position(tokens, 0) == (second.word_embeddings["emb7"], 1)


def test_a_table_of_another_tokenizer_is_not_used(webui, tmp_path):
    library_of(webui, 3)
    table_file = tmp_path / "tokens.json"
    model = webui.load_model(768)
    db = make_db(webui, TokenTable(table_file))
    db.load_textual_inversion_embeddings()
    db.index.table.save()
    other = TokenTable(table_file)
    other.bind("another tokenizer's fingerprint")
    assert other.get("emb1") is None and other.missing(["emb1"]) == ["emb1"]
    assert all(names_tokenized(model).count(f"emb{i}") == 1 for i in range(3))


def test_many_new_names_are_tokenized_off_the_loading_thread_and_prompts_wait_for_them(webui, monkeypatch):
    """A gate holds the fake tokenizer: the load returns while the names are not tokenized yet, and a prompt
    looked up meanwhile waits and then matches."""
    monkeypatch.setattr(keyword_index, "SYNC_LIMIT", 2)
    library_of(webui, 9)
    model = webui.load_model(768)
    gate = threading.Event()
    tokenize = model.cond_stage_model.tokenize

    def gated(texts):
        if texts != list(PROBES):
            gate.wait(60)  # a hang cap only; the test releases it
        return tokenize(texts)

    model.cond_stage_model.tokenize = gated
    db = make_db(webui, TokenTable(None))
    db.load_textual_inversion_embeddings()
    assert not db.index.ready.is_set() and db.ids_lookup == {}
    assert set(db.word_embeddings) == {f"emb{i}" for i in range(9)}  # listed at once, matched once tokenized
    prompt = tokenize(["a emb4 b"])[0]
    found: list = []
    looker = threading.Thread(target=lambda: found.append(db.find_embedding_at_position(prompt, 1)))
    looker.start()
    gate.set()
    looker.join(60)
    assert found == [(db.word_embeddings["emb4"], 1)] and db.index.ready.is_set()


@pytest.mark.parametrize("seed", range(5))
def test_one_pass_buckets_match_the_webuis_insert_by_insert_order(seed):
    """The WebUI inserts a name, then sorts its bucket by length (stable); one sort per bucket gives the same."""
    import random

    rng = random.Random(seed)
    ids = {f"n{i}": tuple(rng.choice((1, 2, 3)) for _ in range(rng.randint(1, 4))) for i in range(60)}
    pairs = [(name, object()) for name in ids]
    _, lookup, _ = build_lookup(pairs, ids.get)
    expected: dict[int, list] = {}
    for name, embedding in pairs:
        bucket = expected.setdefault(ids[name][0], [])
        bucket.append((list(ids[name]), embedding))
        bucket.sort(key=lambda item: len(item[0]), reverse=True)
    assert lookup == expected


def test_token_ids_read_back_are_one_object_per_distinct_id(tmp_path):
    """1,000 names of 4 ids each from a 40-id vocabulary, saved and read back (a restart): the table holds 40 int
    objects, not 4,000 (ids above 256 are one object per occurrence as JSON or a tokenizer makes them: ~130
    bytes a name at 10,000 names)."""
    def tokenize(texts: list[str]) -> list[list[int]]:
        return [[int(str(300 + (len(text) * k + n) % 40)) for k in range(4)] for n, text in enumerate(texts)]

    names = [f"name{i}" for i in range(1000)]
    table = TokenTable(tmp_path / "tokens.json")
    table.bind("key")
    table.fill(names, tokenize, "key")
    table.save()
    for current in (table, TokenTable(tmp_path / "tokens.json")):
        current.bind("key")
        rows = [current.get(name) for name in names]
        assert all(len(row) == 4 for row in rows)
        assert len({id(i) for row in rows for i in row}) == len({i for row in rows for i in row}) <= 40
