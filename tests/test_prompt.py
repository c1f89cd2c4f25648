"""Attention parsing, keyword matching on token ids and 75-token chunking, against the WebUI's rules."""

from __future__ import annotations

import pytest
from factories import vectors
from prompt_helpers import library_with

from sd_embeddings.prompt.chunks import ChunkOptions, indexes_for, parse_attention, tokenize_prompt
from sd_embeddings.prompt.tokenizer import bundled

CAT = 2368  # "cat</w>": one token per filler word


def rounded(parts):
    return [(text, round(weight, 4)) for text, weight in parts]


def test_attention_doctest_from_the_webui() -> None:
    parsed = parse_attention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).")
    assert rounded(parsed) == [("a ", 1.0), ("house", 1.573), (" ", 1.1), ("on", 1.0), (" a ", 1.1),
                               ("hill", 0.55), (", sun, ", 1.1), ("sky", 1.4641), (".", 1.1)]


@pytest.mark.parametrize(("text", "expected"), [
    ("", [("", 1.0)]),
    ("(x)", [("x", 1.1)]),
    ("[x]", [("x", 0.9091)]),
    ("(x:1.2) y", [("x", 1.2), (" y", 1.0)]),
    ("\\(x\\) \\[y\\] a\\\\b", [("(x) [y] a\\b", 1.0)]),
    ("(unclosed", [("unclosed", 1.1)]),
    ("stray) ] :", [("stray) ] :", 1.0)]),
    ("a BREAK b", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
    ("(a BREAK b)", [("a", 1.1), ("BREAK", -1.1), ("b", 1.1)]),  # inside brackets BREAK is plain text
    ("((x:2):0.5)", [("x", 1.0)]),
])
def test_attention_cases(text: str, expected: list) -> None:
    assert rounded(parse_attention(text)) == expected


@pytest.fixture()
def library(tmp_path):
    return library_with(tmp_path, {"EasyNegative": vectors(2), "bad": vectors(1, seed=1),
                                   "bad hands": vectors(3, seed=2), "four": vectors(4, seed=3),
                                   "long80": vectors(80, seed=4)})


def tokens_of(library, text: str, **options):
    tok = bundled()
    return tokenize_prompt(text, tok, indexes_for(library, tok), ChunkOptions(**options))


def placed(result):
    return [(p.entry.keyword, p.chunk, p.offset, p.vectors, round(p.weight, 4)) for p in result.placements]


def test_matching_is_case_insensitive_and_longest_wins(library) -> None:
    result = tokens_of(library, "easynegative, Bad Hands, bad feet")
    assert placed(result) == [("EasyNegative", 0, 0, 2, 1.0), ("bad hands", 0, 3, 3, 1.0), ("bad", 0, 7, 1, 1.0)]
    assert result.token_count == 2 + 1 + 3 + 1 + 1 + 1
    chunk = result.chunks[0]
    assert chunk.tokens[1:3] == [0, 0] and chunk.tokens[3] == 267


def test_a_keyword_split_by_brackets_is_not_matched(library) -> None:
    assert placed(tokens_of(library, "easy(negative)")) == []
    assert placed(tokens_of(library, "(EasyNegative:1.3) [four]")) == [
        ("EasyNegative", 0, 0, 2, 1.3), ("four", 0, 2, 4, 0.9091)]


def test_weights_reach_the_embedding_rows(library) -> None:
    chunk = tokens_of(library, "cat (four:1.5) cat").chunks[0]
    assert chunk.weights[:7] == [1.0, 1.0, 1.5, 1.5, 1.5, 1.5, 1.0]
    assert chunk.tokens[:7] == [49406, CAT, 0, 0, 0, 0, CAT]


def test_empty_prompt_is_one_padding_chunk(library) -> None:
    result = tokens_of(library, "")
    assert len(result.chunks) == 1 and result.token_count == 0 and result.token_limit == 75
    assert result.chunks[0].tokens == [49406] + [49407] * 76


@pytest.mark.parametrize(("fillers", "chunk", "offset"), [(70, 0, 70), (71, 0, 71), (72, 1, 0), (73, 1, 0)])
def test_embedding_at_positions_73_to_76_is_never_split(library, fillers: int, chunk: int, offset: int) -> None:
    result = tokens_of(library, "cat " * fillers + "four")
    assert placed(result) == [("four", chunk, offset, 4, 1.0)]
    first = result.chunks[0]
    assert len(first.tokens) == 77
    if chunk == 1:  # the rest of chunk 0 is padding, the embedding starts chunk 1
        assert first.token_count == fillers and first.tokens[fillers + 1:] == [49407] * (76 - fillers)
        assert result.chunks[1].tokens[1:5] == [0, 0, 0, 0]
        assert result.token_count == 75 + 4 and result.token_limit == 150
    else:
        assert first.tokens[offset + 1:offset + 5] == [0, 0, 0, 0]


def test_embedding_longer_than_a_chunk_is_spread_with_a_notice(library) -> None:
    result = tokens_of(library, "cat long80 cat")
    assert placed(result) == [("long80", 1, 0, 75, 1.0), ("long80", 2, 0, 5, 1.0)]
    assert [p.first_row for p in result.placements] == [0, 75]
    assert [c.token_count for c in result.chunks] == [1, 75, 6]
    assert [n.kind for n in result.notices] == ["too-long"]
    assert all(len(c.tokens) == 77 for c in result.chunks)


def test_break_forces_new_chunks(library) -> None:
    result = tokens_of(library, "cat BREAK EasyNegative BREAK BREAK cat")
    assert [c.token_count for c in result.chunks] == [1, 2, 0, 1]
    assert placed(result) == [("EasyNegative", 1, 0, 2, 1.0)]
    assert result.token_count == 75 * 3 + 1


def test_comma_backtrack_keeps_embedding_vectors(library) -> None:
    # 70 cats, a comma at body index 70, then cat + four (4 vectors) reaching 76: the chunk is full at "cat"
    text = "cat " * 70 + ", four cat"
    fixed = tokens_of(library, text)
    assert [c.token_count for c in fixed.chunks] == [71, 5]
    assert placed(fixed) == [("four", 1, 0, 4, 1.0)]
    assert fixed.chunks[1].tokens[1:6] == [0, 0, 0, 0, CAT]
    webui = tokens_of(library, text, keep_embeddings_on_backtrack=False)
    # the WebUI bug: the fix stays in chunk 0 over padding, chunk 1 gets bare placeholder ids
    assert placed(webui) == [("four", 0, 71, 4, 1.0)]
    assert webui.chunks[0].tokens[72:76] == [49407] * 4 and webui.chunks[1].tokens[1:5] == [0, 0, 0, 0]
    off = tokens_of(library, text, comma_backtrack=0)
    assert [c.token_count for c in off.chunks] == [75, 1]


def test_comma_far_from_the_edge_does_not_backtrack(library) -> None:
    result = tokens_of(library, "cat " * 40 + ", " + "cat " * 40)
    assert [c.token_count for c in result.chunks] == [75, 6]


def test_emphasis_none_keeps_brackets_as_text(library) -> None:
    result = tokens_of(library, "(four:1.5)", parse_attention=False)
    assert placed(result) == [("four", 0, 1, 4, 1.0)]
    assert set(result.chunks[0].weights) == {1.0}
