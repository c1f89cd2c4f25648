"""The core chunker gives the WebUI's chunks for the same text: token ids, multipliers, embedding placements and the
token count, on prompts recorded from a real AUTOMATIC1111 1.10.1 (``tests/data/a1111_tokenize_line.json``, whose
``note`` says how). Weights, BREAK, prompts over 75 tokens, embeddings at chunk edges, comma backtrack 20 and 0,
emphasis "None".

Two comparisons per case: with ``keep_embeddings_on_backtrack=False`` the core equals the WebUI exactly (bug
included); by default it equals the WebUI's chunks after the adapter's repair patch (``relocate_orphaned_fixes``), so
the host, ``encode`` and a WebUI generation with the fix on encode the same thing. No fakes: the embeddings are real
files in tmp_path, the tokenizer is the bundled one.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
from factories import vectors
from prompt_helpers import library_with

from sd_embeddings.prompt.chunks import ChunkOptions, indexes_for, tokenize_prompt
from sd_embeddings.prompt.tokenizer import bundled
from sd_embeddings.webui.generation import relocate_orphaned_fixes

RECORDED = json.loads((Path(__file__).parent / "data" / "a1111_tokenize_line.json").read_text(encoding="utf-8"))
CASES = RECORDED["cases"]
ID_END = 49407


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    names = CASES[0]["embeddings"]
    assert all(case["embeddings"] == names for case in CASES)
    library = library_with(tmp_path_factory.mktemp("parity"),
                           {name: vectors(count, seed=i) for i, (name, count) in enumerate(names.items())})
    assert sorted(entry.keyword for entry in library.usable()) == sorted(names)
    return indexes_for(library, bundled())


def core_chunks(case: dict, indexes, keep: bool) -> tuple[list[dict], int]:
    options = ChunkOptions(comma_backtrack=case["comma_padding_backtrack"], keep_embeddings_on_backtrack=keep,
                           parse_attention=case["emphasis"] != "None")
    result = tokenize_prompt(case["text"], bundled(), indexes, options)
    chunks = [{"tokens": chunk.tokens, "multipliers": chunk.weights,
               "fixes": [[placement.offset, placement.entry.keyword] for placement in chunk.placements]}
              for chunk in result.chunks]
    return chunks, result.token_count


def assert_same(core: list[dict], webui: list[dict]) -> None:
    assert [chunk["tokens"] for chunk in core] == [chunk["tokens"] for chunk in webui]
    assert [chunk["fixes"] for chunk in core] == [chunk["fixes"] for chunk in webui]
    for ours, theirs in zip(core, webui):
        assert ours["multipliers"] == pytest.approx(theirs["multipliers"], rel=1e-12)


def repaired(case: dict) -> list[dict]:
    """The recorded chunks after the adapter's repair patch, as it runs on the WebUI's own chunk objects."""
    sizes = case["embeddings"]
    chunks = [types.SimpleNamespace(tokens=chunk["tokens"], fixes=[
        types.SimpleNamespace(offset=offset, embedding=types.SimpleNamespace(name=name, vectors=sizes[name]))
        for offset, name in chunk["fixes"]]) for chunk in case["chunks"]]
    relocate_orphaned_fixes(chunks, ID_END, lambda offset, embedding: types.SimpleNamespace(
        offset=offset, embedding=embedding))
    return [{**recorded, "fixes": [[fix.offset, fix.embedding.name] for fix in chunk.fixes]}
            for recorded, chunk in zip(case["chunks"], chunks)]


@pytest.mark.parametrize("case", CASES, ids=[f"{c['name']}-bt{c['comma_padding_backtrack']}-{c['emphasis']}"
                                              for c in CASES])
def test_core_chunks_equal_the_webui(case, indexes):
    chunks, token_count = core_chunks(case, indexes, keep=False)
    assert_same(chunks, case["chunks"])
    assert token_count == case["token_count"]
    fixed, fixed_count = core_chunks(case, indexes, keep=True)
    assert_same(fixed, repaired(case))
    assert fixed_count == token_count


def test_the_recording_covers_what_it_claims():
    """The prompt set really exercises the edges: several chunks, BREAK, an embedding moved by the backtrack (the
    WebUI leaves its fix behind), both backtrack settings and emphasis "None"."""
    names = {case["name"] for case in CASES}
    assert {"break", "long-150", "emb-at-edge", "comma-backtrack-emb", "emphasis-none", "weights"} <= names
    assert {case["comma_padding_backtrack"] for case in CASES} == {0, 20}
    assert any(len(case["chunks"]) > 2 for case in CASES)
    bug = next(c for c in CASES if c["name"] == "comma-backtrack-emb" and c["comma_padding_backtrack"] == 20)
    assert bug["chunks"][0]["fixes"] == [[71, "myemb"]] and repaired(bug)[1]["fixes"] == [[2, "myemb"]]
