"""Work on prompt text is linear in its length, for every shape a hostile prompt can take.

Each shape is made at two sizes and the whole host path (``encode_report``: tags, ``AND``, schedule, attention,
``BREAK``, tokenizer, keyword matching, warnings) runs on both as positive and negative prompt. Work is counted
(``work_count.lines_run``: lines of the package run), never timed: twice the text may cost at most ~2.3 times the
work, and every shape stays under a fixed budget of lines per character. Before the fixes a 6000-deep
``"(a:1.1 " * 6000`` took ~37 s to parse and a 16,000-letter word a minute to tokenize.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from factories import vectors
from hostile_kit import TALLY
from hypothesis import given, settings
from hypothesis import strategies as st
from prompt_helpers import library_with
from work_count import growth, lines_run

from sd_embeddings.encode.encoding import encode_report
from sd_embeddings.library import Library
from sd_embeddings.prompt import diagnostics, infotext, syntax
from sd_embeddings.prompt.chunks import split_breaks
from sd_embeddings.prompt.tokenizer import ClipTokenizer, bundled
from sd_embeddings.webui import paste as paste_module

GROWTH_LIMIT = 2.3
"""Work for a text twice as long, relative: ~2.0 when linear (4 when quadratic); the rest is fixed costs."""
LINES_PER_CHARACTER = 600
"""The most lines one prompt character may cost on the whole host path (the worst shape, nested brackets of both
kinds, takes ~350: each piece of text is multiplied by at most 64 brackets of each kind)."""


def letters(count: int, seed: int) -> str:
    chosen = random.Random(seed)
    return "".join(chosen.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(count))


SHAPES = {
    "deep round": lambda n: "(a:1.1 " * n,
    "deep square": lambda n: "[a:1.1 " * n,
    "deep mixed": lambda n: "([a " * n,
    "deep closed": lambda n: "(" * n + "x" + ")" * n,
    "many brackets": lambda n: "(a) [b] (c:1.2) [d|e] [f:g:3] " * (n // 4),
    "stray closers": lambda n: ")]" * n + ":|" * n,
    "long word": lambda n: letters(8 * n, n),
    "long punctuation": lambda n: "!?" * 4 * n,
    "near misses": lambda n: "emb_onx styleabcdf broken " * (n // 3),
    "huge weight": lambda n: "(x:" + "9" * 8 * n + ") ",
    "infinite weights": lambda n: "(x:1e999) (y:-1e999) " * (n // 2),
    "BREAK": lambda n: "a BREAK " * n,
    "BREAK glued": lambda n: "BREAK" * n,
    "blank run": lambda n: "a" + " " * 8 * n + "b",
    "expanding unicode": lambda n: "\ufdfa\ufb03\u0130&amp;\uff21" * n,
    "AND": lambda n: "a AND " * n,
    "unclosed tags": lambda n: "<a:" * n,
    "tags": lambda n: "<lora:x:1> " * n,
    "edit digits": lambda n: "[a:b:" + "1" * 8 * n + "x]",
    "escapes": lambda n: "\\(" * n,
    "explicit names": lambda n: "embedding:emb_one embedding:nothere (embedding:styleabcdf:1.2) " * (n // 5),
    "explicit blanks": lambda n: "embedding:" + " " * 8 * n + ",",
}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    root: Path = tmp_path_factory.mktemp("prompt_work")
    library = library_with(root, {"emb_one": vectors(1), "styleabcde": vectors(2), "bigemb": vectors(80)})
    (root / "broken.pt").write_bytes(b"not a pickle")
    library.refresh()
    encode_report(library, "warm (emb_one) up, styleabcdf", "x")  # keyword indexes and caches built once
    return library


@pytest.mark.parametrize("shape", SHAPES)
def test_the_host_path_is_linear_in_the_prompt(library: Library, shape: str) -> None:
    make = SHAPES[shape]
    small, large, ratio = growth(lambda text: encode_report(library, text, text), make, 200)
    TALLY["inputs"] += 2
    assert ratio <= GROWTH_LIMIT, (shape, small, large)
    assert large <= LINES_PER_CHARACTER * 2 * len(make(400)), (shape, large)


def test_a_long_unique_word_is_tokenized_in_n_log_n() -> None:
    """BPE merges through a heap; the reference loop rescans the word after every merge (quadratic)."""
    shared = bundled()
    fresh = ClipTokenizer(shared.vocab, sorted(shared.ranks, key=shared.ranks.__getitem__))
    small, large, ratio = growth(fresh.encode, lambda n: letters(n, n), 3000)
    assert ratio <= GROWTH_LIMIT, (small, large)
    assert fresh.encode("x" + letters(3000, 1)) == shared.encode("x" + letters(3000, 1))
    assert all(len(piece) <= 64 for piece in fresh._cache), "huge words are not kept in the cache"


def test_near_miss_never_makes_the_deletions_of_a_huge_word(library: Library,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A word longer than every keyword + 1 is no near miss; its deletions would be len(word)**2 characters."""
    made: list[int] = []
    real = diagnostics._deletions
    monkeypatch.setattr(diagnostics, "_deletions", lambda key: made.append(len(key) ** 2) or real(key))
    report = encode_report(library, letters(20_000, 3) + " styleabcdf", "")
    assert sum(made) <= 2 * len("styleabcdf") ** 2
    assert [w["word"] for w in report["warnings"] if w["kind"] == "near-miss"] == ["styleabcdf"]


# -- the WebUI's regular expressions are the specification; ours read the same text linearly -----------------------

WEBUI_TAG = r"<\w+:[^>]+>"
WEBUI_WEIGHT = r"^(.*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$"
WEBUI_BREAK = r"\s*\bBREAK\b\s*"
PIECES = st.lists(st.sampled_from(list("ab <>:_ \n\t.1-+") + ["<lora:x:1>", "AND", "BREAK", "1.5", ".5", "5.",
                                                            " :", "\u00a0", "\x1c", "\u0661", "<a:", ">"]),
                  max_size=25).map("".join)


@given(PIECES)
@settings(max_examples=400, deadline=None)
def test_tags_weights_and_breaks_match_the_webui_expressions(text: str) -> None:
    import re

    assert syntax.extra_networks(text) == re.findall(WEBUI_TAG, text)
    assert syntax.strip_extra_networks(text) == re.sub(WEBUI_TAG, "", text)
    expected = []
    for part in re.split(r"\bAND\b", text):
        match = re.match(WEBUI_WEIGHT, part, re.S)
        expected.append((match.group(1), float(match.group(2)) if match.group(2) else 1.0))
    assert syntax.split_and(text) == expected
    assert split_breaks(text) == re.split(WEBUI_BREAK, text, flags=re.S)



def test_a_pasted_infotext_costs_the_same_with_100000_pairs(library: Library) -> None:
    """A picture's ``TI hashes`` may list 100,000 names of one known hash: each would be a rename pass over the
    pasted prompts (and a list look-up per pair). At most ``MAX_PAIRS`` are read."""
    entry = library.get("emb_one")
    assert entry is not None and library.ensure_hash(entry)

    def paste(names: str) -> dict:
        params = {"TI hashes": names, "Prompt": "name1, name2 " * 500, "Negative prompt": "name3"}
        paste_module.on_infotext_pasted(library, params)
        return params

    def pairs(count: int) -> str:
        return ", ".join(f"name{i}: {entry.shorthash}" for i in range(count))

    small, large = lines_run(paste, pairs(1_000)), lines_run(paste, pairs(100_000))
    assert large <= 1.5 * small, (small, large)
    assert len(infotext.parse_ti_hashes(f"TI hashes: x: {entry.shorthash}, " * 100_000)) == 1
    assert len(infotext.parse_ti_hashes(", ".join(f"n{i}: h" for i in range(100_000)))) == infotext.MAX_PAIRS
    assert infotext.parse_ti_hashes("x" * 129 + ": aa, y: " + "b" * 129 + ", z: 1") == [("z", "1")]
    assert paste(pairs(3))["Prompt"].startswith("emb_one, emb_one ")  # renaming still works
