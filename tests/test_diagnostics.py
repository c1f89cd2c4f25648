"""Warnings for words meant as embeddings that stay plain text, on realistic mistakes."""

from __future__ import annotations

import gc
import tracemalloc

import pytest
from factories import sdxl_vectors, vectors, write_a1111_pt
from prompt_helpers import library_with

from sd_embeddings.encode.encoding import encode_report
from sd_embeddings.prompt import diagnostics
from sd_embeddings.prompt.diagnostics import NearMissIndex, squash, words_of
from sd_embeddings.records import Entry, Status


@pytest.fixture()
def library(tmp_path):
    library = library_with(tmp_path, {"EasyNegative": vectors(2), "bad-hands-5": vectors(3, seed=1),
                                      "xl/pony_style": sdxl_vectors(2), "ng": vectors(1, seed=3)})
    (tmp_path / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "halfdone.pt").write_bytes(b"PK\x03\x04 truncated")
    library.refresh()
    return library


def kinds(report, prompt="positive"):
    return [(w["kind"], w["word"]) for w in report[prompt]["warnings"]]


def test_case_difference_is_a_match_not_a_warning(library) -> None:
    report = encode_report(library, "easynegative, EASYNEGATIVE", conditioning=False)
    assert kinds(report) == []
    assert [e["keyword"] for e in report["embeddings"]] == ["EasyNegative", "EasyNegative"]


def test_underscore_dash_and_one_letter_are_near_misses(library) -> None:
    report = encode_report(library, "Easy_Negative, (bad_hands_5:1.2), EasyNegatve, bad-hands-6, cat",
                           "easy-negative", conditioning=False)
    assert kinds(report) == [("near-miss", "Easy_Negative"), ("near-miss", "bad_hands_5"),
                             ("near-miss", "EasyNegatve"), ("near-miss", "bad-hands-6")]
    assert kinds(report, "negative") == [("near-miss", "easy-negative")]
    assert report["embeddings"] == []
    message = report["positive"]["warnings"][0]["message"]
    assert "EasyNegative" in message and "EasyNegative.pt" in message


def test_short_keywords_do_not_produce_one_letter_noise(library) -> None:
    assert kinds(encode_report(library, "nag, no, ng", conditioning=False)) == []


def test_incompatible_keyword_says_why(library) -> None:
    report = encode_report(library, "a pony_style portrait", conditioning=False)
    (warning,) = report["positive"]["warnings"]
    assert (warning["kind"], warning["word"]) == ("incompatible", "pony_style")
    assert "SDXL" in warning["message"] and "xl/pony_style.safetensors" in warning["message"]


def test_failed_files_are_reported_by_keyword(library) -> None:
    report = encode_report(library, "broken, halfdone", "empty", conditioning=False)
    assert kinds(report) == [("failed", "broken"), ("failed", "halfdone")]
    assert kinds(report, "negative") == [("failed", "empty")]
    assert "broken.safetensors" in report["positive"]["warnings"][0]["message"]


def test_too_long_embedding_warns(tmp_path) -> None:
    library = library_with(tmp_path, {"hugeemb": vectors(80)})
    report = encode_report(library, "hugeemb", conditioning=False)
    assert kinds(report) == [("too-long", "hugeemb")]
    assert [(e["chunk"], e["vectors"]) for e in report["embeddings"]] == [(0, 75), (1, 5)]


def test_helpers() -> None:
    assert squash("Easy_Negative") == squash("easy-negative") == squash("EasyNegative") == "easynegative"
    assert words_of("(Easy_Negative:1.2), [bad hands] BREAK x.") == ["Easy_Negative", "bad", "hands", "x"]
    index = NearMissIndex([])
    assert index.find("anything") is None


def test_swapped_neighbours_are_a_near_miss(tmp_path) -> None:
    library = library_with(tmp_path, {"mystyle": vectors(1), "EasyNegative": vectors(1, seed=1)})
    report = encode_report(library, "mystyel, EasyNegaitve, mysytle", conditioning=False)
    assert kinds(report) == [("near-miss", "mystyel"), ("near-miss", "EasyNegaitve"), ("near-miss", "mysytle")]
    assert "did you mean the embedding 'mystyle'" in report["positive"]["warnings"][0]["message"]
    assert "two letters swapped" in report["positive"]["warnings"][0]["message"]


def test_two_edits_are_not_a_near_miss(tmp_path) -> None:
    library = library_with(tmp_path, {"mystyle": vectors(1)})
    assert kinds(encode_report(library, "ymstyel, mstyel, mytsyel", conditioning=False)) == []


def near_miss_entries(count: int) -> list[Entry]:
    """Entries as a scan makes them (plain records; no file needs reading to index a keyword)."""
    return [Entry(path=f"/emb/style_{i:05d}x.pt", root="/emb", folder="", keyword=f"style_{i:05d}x", format="pickle",
                  size=1, mtime_ns=0, status=Status.LOADED) for i in range(count)]


def test_the_near_miss_index_holds_no_object_per_form() -> None:
    """2,000 keywords of 11 letters make ~24,000 forms (each keyword and its one-letter deletions). As a dict of
    strings to lists they held ~1,000 bytes per keyword for as long as the WebUI ran (9 MB at 10,000 files); the
    index keeps one sorted array of hashes: under 120 bytes per keyword (tracemalloc, the index alive)."""
    entries = near_miss_entries(2000)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        index = NearMissIndex(entries)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held / len(entries) < 120
    assert index.find("Style-01234X") == (entries[1234], "differs only in case, underscores, dashes or spaces")
    assert index.find("style_01234xz") == (entries[1234], "is one letter off")
    assert index.find("stlye_01234x") == (entries[1234], "has two letters swapped")


def test_near_misses_are_checked_as_text_whatever_the_hashes_say(monkeypatch) -> None:
    """Every form given the same hash (the worst collisions possible): only keywords one edit away are named."""
    monkeypatch.setattr(diagnostics, "_hashed", lambda form: 7)
    entries = near_miss_entries(50)
    index = NearMissIndex(entries)
    assert index.find("STYLE00042X") == (entries[42], "differs only in case, underscores, dashes or spaces")
    assert index.find("style_00042y") == (entries[42], "is one letter off")
    assert index.find("style_00042xyz") is None and index.find("totally_else") is None and index.find("ng") is None


def test_a_few_new_files_extend_the_near_miss_index_and_a_removal_rebuilds_it(tmp_path, monkeypatch) -> None:
    """After a drop the index took in the new keywords only (hashing 10,000 keywords again cost 0.15 s on the next
    generation); what it finds is what a fresh index finds. A file that went away makes it start over."""
    library = library_with(tmp_path, {"EasyNegative": vectors(1), "bad-hands-5": vectors(1, seed=1)})
    hashed: list[str] = []
    real = diagnostics._deletions
    monkeypatch.setattr(diagnostics, "_deletions", lambda key: hashed.append(key) or real(key))

    def index_hashing() -> tuple[NearMissIndex, list[str]]:
        hashed.clear()
        index = diagnostics.near_miss_index(library, library.family)
        return index, sorted(hashed)

    first, keys = index_hashing()
    assert keys == ["badhands5", "easynegative"]
    write_a1111_pt(tmp_path / "sub" / "mystyle.pt", vectors(1, seed=2))
    library.refresh()
    grown, keys = index_hashing()
    assert keys == ["mystyle"] and grown is not first and len(first.entries) == 2  # the old one is left as it was
    fresh = NearMissIndex(list(library.usable()))
    for word in ("mystyel", "EasyNegaitve", "bad_hands5", "nothing"):
        found, expected = grown.find(word), fresh.find(word)
        assert (found and (found[0].path, found[1])) == (expected and (expected[0].path, expected[1])), word
    assert grown.find("mystyel")[0].keyword == "mystyle"
    (tmp_path / "EasyNegative.pt").unlink()
    library.refresh()
    rebuilt, keys = index_hashing()
    assert keys == ["badhands5", "mystyle"] and rebuilt.find("EasyNegaitve") is None
