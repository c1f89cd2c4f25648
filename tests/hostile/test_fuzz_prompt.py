"""Property tests for the prompt parser and chunker (``sd_embeddings.prompt``): any string is a prompt.

- ``parse_attention`` never raises; every weight is finite and within ``WEIGHT_LIMIT``; the fragment text is the
  prompt with syntax removed (a subsequence; unchanged when there is no syntax); prompts built from a tree of
  groups come back with exactly the tree's text and per-character weights.
- ``tokenize_prompt`` never raises; chunks are start + 75 + end; placements point at placeholder ids carrying the
  placement's weight; an embedding of up to 75 vectors is never split, a longer one spreads over consecutive chunks.

The default run is bounded (``DEFAULT_EXAMPLES`` per property); ``-m slow`` runs ``SLOW_EXAMPLES`` each.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from factories import vectors
from hostile_kit import TALLY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prompt_helpers import library_with

from sd_embeddings.prompt.chunks import (
    BREAK_WEIGHT,
    CHUNK_LENGTH,
    NESTING_LIMIT,
    PLACEHOLDER_ID,
    WEIGHT_LIMIT,
    ChunkOptions,
    PromptTokens,
    indexes_for,
    parse_attention,
    tokenize_prompt,
)
from sd_embeddings.prompt.tokenizer import bundled

DEFAULT_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SLOW_EXAMPLES = int(os.environ.get("FUZZ_SLOW_EXAMPLES", "5000"))
COUNT = {"examples": 0}
SYNTAX = "()[]\\:"
KEYWORDS = {"emb_one": 1, "emb five": 5, "emb40": 40, "emb75": 75, "emb80": 80}

# text that is dense in syntax: brackets, escapes, weights (huge, negative, not numbers), BREAK
PIECES = st.sampled_from(["(", ")", "[", "]", "\\", "\\(", "\\)", "\\[", "\\]", "\\\\", ":", ":1.2)", ":0)",
                          ":-1)", ":1e308)", ":-inf)", ":nan)", ":" + "9" * 400 + ")", ":.)", ":1.2.3)", ": 2 )",
                          " BREAK ", "BREAK", "xBREAKx", " ", ",", "\n", "cat", "\u00e9", "\U0001f600", "!", "."])
SYNTAX_TEXT = st.lists(st.one_of(PIECES, st.text(max_size=5)), max_size=60).map("".join)
ANY_TEXT = st.one_of(st.text(max_size=300), SYNTAX_TEXT)


def _run(examples: int):
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _count() -> None:
    COUNT["examples"] += 1
    TALLY["inputs"] += 1


def _parse(text: str) -> list[tuple[str, float]]:
    _count()
    try:
        return parse_attention(text)
    except BaseException:
        TALLY["crashes"] += 1
        raise


def is_subsequence(small: str, big: str) -> bool:
    rest = iter(big)
    return all(char in rest for char in small)


def check_parse(text: str) -> None:
    parts = _parse(text)
    assert parts, text
    for piece, weight in parts:
        assert isinstance(piece, str) and isinstance(weight, float)
        assert math.isfinite(weight) and abs(weight) <= WEIGHT_LIMIT, (text, weight)
    plain = "".join(piece for piece, _ in parts)  # BREAK markers keep their word, so this still holds
    assert is_subsequence(plain, text), (text, parts)
    if not any(c in SYNTAX for c in text) and "BREAK" not in text:
        assert parts == [(text, 1.0)]


@given(ANY_TEXT)
@_run(DEFAULT_EXAMPLES)
def test_parse_any_string(text: str) -> None:
    check_parse(text)


def test_parse_extremes() -> None:
    for text in ("(x:1e308)", "(x:-inf)", "(x:nan)", "(x:" + "9" * 400 + ")", "((x:0):" + "9" * 400 + ")",
                 "(x:-" + "9" * 400 + ")", "(x:.)", "(x:1.2.3)", "(x:+-1)", "(" * 5000 + "x", "[" * 5000 + "x",
                 "(" * 3000 + "x" + ")" * 3000, "[" * 3000 + "x" + "]" * 3000, ")" * 1000 + "]" * 1000,
                 "\\" * 1001, "BREAK" * 500, "x" * 100_000, "(a " * 800, ":" * 1000 + ")"):
        check_parse(text)
    assert parse_attention("(x:1.2.3)") == [("x:1.2.3", 1.1)]
    assert parse_attention("(x:" + "9" * 400 + ")") == [("x", WEIGHT_LIMIT)]
    assert parse_attention("(x:-" + "9" * 400 + ")") == [("x", -WEIGHT_LIMIT)]
    # brackets nested past NESTING_LIMIT hide their characters but do not weigh (linear work, see test_prompt_work)
    deepest = [("x", pytest.approx(1.1 ** NESTING_LIMIT, rel=1e-12))]
    assert parse_attention("(" * 5000 + "x") == parse_attention("(" * NESTING_LIMIT + "x") == deepest
    assert parse_attention("[" * 5000 + "x" + "]" * 5000) == [("x", pytest.approx((1 / 1.1) ** 64, rel=1e-12))]


# -- tree-built prompts: exact text and weights ------------------------------------------------------------------

LEAF_CHARS = st.sampled_from(list("abcxyz019 ,.!-_'\"\u00e9\u732b") + ["\\(", "\\)", "\\[", "\\]", "\\\\"])


@dataclass
class Node:
    kind: str  # "text" | "round" | "square" | "weighted"
    text: str = ""  # rendered text of a leaf
    children: tuple[Node, ...] = ()
    weight: str = ""


def leaf(chars: list[str]) -> Node:
    return Node("text", "".join(chars))


TREE = st.recursive(
    st.lists(LEAF_CHARS, min_size=1, max_size=8).map(leaf),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda c: Node("round", children=tuple(c))),
        st.lists(inner, max_size=4).map(lambda c: Node("square", children=tuple(c))),
        st.tuples(st.lists(inner, max_size=4), st.decimals(-1.5, 1.5, places=3, allow_nan=False)).map(
            lambda a: Node("weighted", children=tuple(a[0]), weight=str(a[1]))),
    ), max_leaves=12)


def render(node: Node) -> str:
    inner = "".join(render(c) for c in node.children)
    return {"text": node.text, "round": f"({inner})", "square": f"[{inner}]",
            "weighted": f"({inner}:{node.weight})"}[node.kind]


def expected(node: Node, weight: float = 1.0) -> list[tuple[str | None, float]]:
    """Characters and their weights: ``(x)`` x1.1, ``[x]`` /1.1, ``(x:w)`` xw, escapes are literal.

    ``(None, 0.0)`` marks a bracket: the parser's text runs end there (which matters for BREAK's whitespace).
    """
    if node.kind == "text":
        plain = node.text.replace("\\\\", "\0").replace("\\", "").replace("\0", "\\")
        return [(c, weight) for c in plain]
    factor = {"round": 1.1, "square": 1 / 1.1, "weighted": float(node.weight or 1)}[node.kind]
    inner = [pair for child in node.children for pair in expected(child, weight * factor)]
    return [(None, 0.0), *inner, (None, 0.0)]


def break_rule(pairs: list[tuple[str | None, float]]) -> list[tuple[str, float]]:
    """BREAK markers expanded to their word; whitespace in the same text run as a BREAK is dropped."""
    out: list[tuple[str | None, float]] = []
    after_break = False
    for c, w in pairs:
        if c == "BREAK":
            while out and out[-1][0] is not None and out[-1][0].isspace():
                out.pop()
            out += [(ch, w) for ch in c]
            after_break = True
        elif not (after_break and c is not None and c.isspace()):
            out.append((c, w))
            after_break = False
    return [(c, w) for c, w in out if c is not None]


SEGMENTS = st.lists(st.lists(TREE, min_size=1, max_size=4), min_size=1, max_size=3)


def check_tree(segments: list[list[Node]]) -> None:
    """Segments joined by BREAK: the text comes back exactly, with the weights of its nesting."""
    prompt = " BREAK ".join("".join(render(n) for n in segment) for segment in segments)
    want: list[tuple[str | None, float]] = []
    for i, segment in enumerate(segments):
        if i:
            want.append(("BREAK", BREAK_WEIGHT))
        want += [pair for n in segment for pair in expected(n)]
    want_chars = break_rule(want)
    got_chars = [(c, w) for piece, w in _parse(prompt) for c in piece]
    assert "".join(c for c, _ in got_chars) == "".join(c for c, _ in want_chars), prompt
    for (c, w), (_, v) in zip(got_chars, want_chars, strict=True):
        assert math.isclose(w, v, rel_tol=1e-9, abs_tol=1e-12), (prompt, c, w, v)


@given(SEGMENTS)
@_run(DEFAULT_EXAMPLES)
def test_tree_prompts_round_trip(segments: list[list[Node]]) -> None:
    check_tree(segments)


# -- chunking ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory):
    folder: Path = tmp_path_factory.mktemp("prompt_fuzz")
    library = library_with(folder, {k: vectors(n, seed=n) for k, n in KEYWORDS.items()})
    return library, indexes_for(library, bundled())


WORDS = st.sampled_from([*KEYWORDS, "Emb_One", "(emb40:1.3)", "[emb five]", "emb", "five", ",", ", ", "BREAK",
                         "a", "cat", "a very long descriptive phrase", "!", "\\(", "(", ")", "embone", "\u732b"])
PROMPTS = st.one_of(st.lists(WORDS, max_size=120).map(" ".join), st.lists(WORDS, max_size=60).map("".join),
                    SYNTAX_TEXT, st.text(max_size=200))


def check_chunks(text: str, result: PromptTokens) -> None:
    tok = bundled()
    assert result.chunks
    for index, chunk in enumerate(result.chunks):
        assert len(chunk.tokens) == CHUNK_LENGTH + 2 and len(chunk.weights) == CHUNK_LENGTH + 2
        assert chunk.tokens[0] == tok.bos_id and chunk.tokens[-1] == tok.eos_id
        assert 0 <= chunk.token_count <= CHUNK_LENGTH
        assert all(t == tok.eos_id for t in chunk.tokens[1 + chunk.token_count:])
        assert all(math.isfinite(w) and abs(w) <= WEIGHT_LIMIT for w in chunk.weights)
        covered = set()
        for p in chunk.placements:
            assert p.chunk == index
            assert p.offset >= 0 and p.vectors >= 1 and p.offset + p.vectors <= chunk.token_count
            rows = range(1 + p.offset, 1 + p.offset + p.vectors)
            assert all(chunk.tokens[r] == PLACEHOLDER_ID for r in rows), (text, index, p.offset)
            assert all(chunk.weights[r] == p.weight for r in rows)
            assert not covered & set(rows), "two placements share a row"
            covered |= set(rows)
        if "!" not in text:  # "!" is token 0 too; without it every placeholder row belongs to an embedding
            body = range(1, 1 + chunk.token_count)
            assert {r for r in body if chunk.tokens[r] == PLACEHOLDER_ID} == covered, text
    placements = result.placements
    i = 0
    while i < len(placements):
        p = placements[i]
        assert p.entry.vectors == KEYWORDS[p.entry.keyword]
        assert p.first_row == 0
        if p.entry.vectors <= CHUNK_LENGTH:  # never split across a chunk edge
            assert p.vectors == p.entry.vectors
            i += 1
            continue
        rows, chunk = p.vectors, p.chunk  # longer than a chunk: consecutive chunks, in order, every row once
        while rows < p.entry.vectors:
            i += 1
            nxt = placements[i]
            assert nxt.entry is p.entry and nxt.first_row == rows and nxt.chunk == chunk + 1 and nxt.offset == 0
            rows, chunk = rows + nxt.vectors, nxt.chunk
        assert rows == p.entry.vectors
        i += 1


def check_tokenize(indexes, text: str, options: ChunkOptions) -> None:
    _count()
    try:
        result = tokenize_prompt(text, bundled(), indexes[1], options)
    except BaseException:
        TALLY["crashes"] += 1
        raise
    check_chunks(text, result)


OPTIONS = st.builds(ChunkOptions, comma_backtrack=st.sampled_from([0, 1, 20, 74, 75]),
                    keep_embeddings_on_backtrack=st.just(True), parse_attention=st.booleans())


def test_chunks_of_any_prompt(indexes) -> None:
    @given(PROMPTS, OPTIONS)
    @_run(DEFAULT_EXAMPLES)
    def run(text: str, options: ChunkOptions) -> None:
        check_tokenize(indexes, text, options)

    run()


def test_chunk_extremes(indexes) -> None:
    for text in ("emb80 " * 30, "emb75, " * 20, ("a, " * 36 + "emb40 ") * 5, "emb80", "BREAK " * 50,
                 "(emb five:1e999) " * 40, "[" * 400 + "emb_one", "cat " * 5000, "emb_one" * 300):
        check_tokenize(indexes, text, ChunkOptions())
    spread = tokenize_prompt("emb80", bundled(), indexes[1])
    assert [(p.chunk, p.first_row, p.vectors) for p in spread.placements] == [(0, 0, 75), (1, 75, 5)]


@pytest.mark.slow
def test_slow_parse_any_string() -> None:
    given(ANY_TEXT)(_run(SLOW_EXAMPLES)(check_parse))()


@pytest.mark.slow
def test_slow_tree_prompts_round_trip() -> None:
    given(SEGMENTS)(_run(SLOW_EXAMPLES)(check_tree))()


@pytest.mark.slow
def test_slow_chunks_of_any_prompt(indexes) -> None:
    given(PROMPTS, OPTIONS)(_run(SLOW_EXAMPLES)(lambda text, options: check_tokenize(indexes, text, options)))()


def teardown_module() -> None:
    print(f"\nprompt fuzz: {COUNT['examples']} examples")
