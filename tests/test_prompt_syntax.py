"""``prompt_syntax``: extra-network tags, ``AND`` with weights, prompt editing and alternation schedules.

Expected schedules are the WebUI's documented results for these prompts (reference/a1111.md §4.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from work_count import lines_run

from sd_embeddings.prompt import syntax as prompt_syntax
from sd_embeddings.prompt.syntax import distinct_texts, schedule, split_and


def test_prompt_parts_strip_extra_networks_and_and_weights():
    assert prompt_syntax.prompt_parts("a <lora:x y:1> cat:1.1 AND dog :0.5 AND (bird:1.2)") == [
        "a  cat", " dog", " (bird:1.2)"]
    assert prompt_syntax.prompt_parts("ANDROID") == ["ANDROID"]


def test_split_and_weights():
    assert split_and("cat:1.1 AND dog AND bird: -.5 ") == [("cat", 1.1), (" dog", 1.0), (" bird", -0.5)]
    assert split_and("(cat:1.2)") == [("(cat:1.2)", 1.0)]


def test_extra_networks_listed_and_stripped():
    text = "a <lora:style:0.8> cat <hypernet:h:1>"
    assert prompt_syntax.extra_networks(text) == ["<lora:style:0.8>", "<hypernet:h:1>"]
    assert prompt_syntax.strip_extra_networks(text) == "a  cat "


@pytest.mark.parametrize(("text", "expected"), [
    ("test", [(10, "test")]),
    ("a [b:3]", [(3, "a "), (10, "a b")]),
    ("a [b: 3]", [(3, "a "), (10, "a b")]),
    ("a [[[b]]:2]", [(2, "a "), (10, "a [[b]]")]),
    ("[(a:2):3]", [(3, ""), (10, "(a:2)")]),
    ("a [b : c : 1] d", [(1, "a b  d"), (10, "a  c  d")]),
    ("a[b:[c:d:2]:1]e", [(1, "abe"), (2, "ace"), (10, "ade")]),
    ("a [unbalanced", [(10, "a [unbalanced")]),
    ("a [b:.5] c", [(5, "a  c"), (10, "a b c")]),
    ("a [b::4] c", [(4, "a b c"), (10, "a  c")]),
    ("((a][:b:c [d:3]", [(3, "((a][:b:c "), (10, "((a][:b:c d")]),
    ("[a|(b:1.1)]", [(step, "a" if step % 2 else "(b:1.1)") for step in range(1, 11)]),
    ("[fe|]male", [(step, "female" if step % 2 else "male") for step in range(1, 11)]),
    ("[fe|||]male", [(step, "female" if step % 4 == 1 else "male") for step in range(1, 11)]),
    ("a [b:c:1.5]", [(10, "a b")]),  # a fraction past the end never switches
])
def test_schedule_matches_the_webui(text, expected):
    assert schedule(text, 10) == expected


def test_distinct_texts_merge_ranges():
    assert distinct_texts("a [b:c:5]", 20) == [("a b", [(1, 5)]), ("a c", [(6, 20)])]
    assert distinct_texts("[x|y]", 4) == [("x", [(1, 1), (3, 3)]), ("y", [(2, 2), (4, 4)])]
    assert distinct_texts("plain (x:1.2)", 20) == [("plain (x:1.2)", [(1, 20)])]


@given(st.text(alphabet="ab[]():|.1 ", max_size=40), st.integers(1, 30))
def test_schedule_is_total_and_covers_every_step(text, steps):
    ranges = [step_range for _text, found in distinct_texts(text, steps) for step_range in found]
    covered = sorted(step for first, last in ranges for step in range(first, last + 1))
    assert covered == list(range(1, steps + 1))
    if not any(c in text for c in "[]"):
        assert schedule(text, steps) == [(steps, text)]


WORK_PER_CHARACTER = 60
"""Lines of the parser run per prompt character (``work_count.lines_run``: counted, never timed). The parser reads
the text once and decides each bracket once (9 to 30 lines a character on the prompts below); retrying each
bracket position up to the nesting limit, as the recursive descent before it did, cost 450 to 1,550."""


def within_budget(text: str) -> bool:
    return lines_run(schedule, text, 10) <= WORK_PER_CHARACTER * max(1, len(text))


def test_hostile_nesting_is_bounded_and_literal_beyond_the_limit():
    deep = "[" * 5000 + "a:b:3" + "]" * 5000
    # outer brackets that cannot open a construct within the nesting limit are literal, the inner ones work
    assert [step for step, _text in schedule(deep, 10)] == [3, 10]
    assert within_budget(deep)
    assert all(len(text) == len(deep) - 6 for _step, text in schedule(deep, 10))
    assert schedule("[" * 20000, 10) == [(10, "[" * 20000)]
    assert within_budget("[" * 20000)
    for hostile in ("[a|" * 3000, "(" * 5000 + "[x:y:2]", "[a:" * 4000 + "b" + ":1]" * 4000, "[a:1.1 " * 3000,
                    "[" * 60 + "(x)" * 3000, "([" * 3000 + "a:b:2" + ")]" * 3000):
        schedule(hostile, 10)
        assert within_budget(hostile), hostile[:20]
    nested = "[" * 10 + "a:b:3" + "]" * 10
    assert schedule(nested, 10) == [(3, "[" * 9 + "a" + "]" * 9), (10, "[" * 9 + "b" + "]" * 9)]
