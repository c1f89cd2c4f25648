"""``TI hashes``: one entry per embedding, the WebUI's format, and resolving a pasted one."""

from __future__ import annotations

import pytest
from factories import vectors
from prompt_helpers import library_with

from sd_embeddings.encode.encoding import encode_report
from sd_embeddings.prompt import infotext


@pytest.fixture()
def library(tmp_path):
    return library_with(tmp_path, {"EasyNegative": vectors(2), "bad-hands-5": vectors(3, seed=1),
                                   "a:b,c": vectors(1, seed=2)})


def test_format_dedupes_and_sanitizes(library) -> None:
    easy, bad = library.get("EasyNegative"), library.get("bad-hands-5")
    odd = next(e for e in library.entries if e.keyword == "a:b,c")
    value = infotext.ti_hashes([easy, bad, easy, odd, bad], library)
    assert value == f"EasyNegative: {easy.shorthash}, bad-hands-5: {bad.shorthash}, abc: {odd.shorthash}"
    assert len(easy.shorthash) == 12
    assert infotext.infotext_item(value) == f'TI hashes: "{value}"'


def test_report_lists_each_embedding_once_across_prompts(library, monkeypatch) -> None:
    monkeypatch.setenv("SD_EMBEDDINGS_ENCODER_LAYERS", "1")
    report = encode_report(library, "EasyNegative, EasyNegative BREAK (EasyNegative:1.2)",
                           "bad-hands-5, EasyNegative", conditioning=False)
    easy, bad = library.get("EasyNegative"), library.get("bad-hands-5")
    assert report["ti_hashes"] == f"EasyNegative: {easy.shorthash}, bad-hands-5: {bad.shorthash}"
    assert len(report["embeddings"]) == 5


def test_parse_whole_infotext_and_bare_value() -> None:
    text = ('a cat, EasyNegative\nNegative prompt: bad-hands-5\nSteps: 20, Sampler: Euler a, '
            'TI hashes: "EasyNegative: 66a7279a88dd, bad-hands-5: aa7651be154c", Version: v1.10.1')
    expected = [("EasyNegative", "66a7279a88dd"), ("bad-hands-5", "aa7651be154c")]
    assert infotext.parse_ti_hashes(text) == expected
    assert infotext.parse_ti_hashes("EasyNegative: 66a7279a88dd, bad-hands-5: aa7651be154c") == expected
    assert infotext.parse_ti_hashes("a: 66a7279a88dd, a: 66a7279a88dd") == [("a", "66a7279a88dd")]
    assert infotext.parse_ti_hashes("Steps: 20, TI hashes: x: 123456789abc, Seed: 1") == [("x", "123456789abc")]


def test_round_trip_resolves_everything_ok(library, monkeypatch) -> None:
    report = encode_report(library, "EasyNegative, bad-hands-5", conditioning=False)
    assert report["ti_hashes"].count(": ") == 2
    pasted = infotext.parse_ti_hashes(f"Steps: 20, {report['ti_hashes_item']}, Seed: 1")
    resolved = infotext.resolve(pasted, library)
    assert [(r.name, r.status, r.keyword) for r in resolved] == [
        ("EasyNegative", "ok", "EasyNegative"), ("bad-hands-5", "ok", "bad-hands-5")]


def test_resolve_missing_renamed_changed(library, tmp_path) -> None:
    easy, bad = library.get("EasyNegative"), library.get("bad-hands-5")
    library.ensure_hash(easy), library.ensure_hash(bad)
    pairs = [("easy_negative_v2", easy.shorthash), ("bad-hands-5", "0123456789ab"), ("nothere", "fedcba987654"),
             ("easynegative", easy.shorthash.upper()), ("bundled", "some lora")]
    resolved = {r.name: r for r in infotext.resolve(pairs, library)}
    assert resolved["easy_negative_v2"].status == "renamed" and resolved["easy_negative_v2"].keyword == "EasyNegative"
    assert resolved["bad-hands-5"].status == "changed" and resolved["bad-hands-5"].local_hash == bad.shorthash
    assert resolved["nothere"].status == "missing" and resolved["nothere"].file is None
    assert resolved["easynegative"].status == "ok"
    assert resolved["bundled"].status == "missing"
