"""A keyword is what the tokenizer reads, not the text: a downloaded picture storing ``bad -hands-5`` (a space CLIP
drops) reads as ``bad-hands-5`` and must never take that keyword from ``bad-hands-5.safetensors``, in the library's
collision rule, the prompt's keyword index, ``embedding:name`` spellings or the WebUI database's ``ids_lookup``.
Real safetensors and PNG embeddings written at test time, the real CLIP tokenizer."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from factories import vectors, write_image, write_safetensors
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sd_embeddings.encode.encoding import encode_report
from sd_embeddings.library import Library, clip_text
from sd_embeddings.library.clip_text import keyword_key
from sd_embeddings.prompt import explicit
from sd_embeddings.prompt.keywords import KeywordIndex
from sd_embeddings.prompt.tokenizer import bundled
from sd_embeddings.records import Entry, Family, Status

# Each reads as bad-hands-5 to CLIP (pieces bad, -, hands, -, 5) while its text differs; all are plain names that a
# picture may store (no control character, entity or outer space; NFKC-stable). ' ' sorts before '-': the stranger
# would come first in keyword order.
TOKEN_EQUAL = ["bad -hands-5", "bad- hands-5", "bad-hands -5", "BAD -HANDS- 5", "bad  -  hands  -  5"]


def _scan(folder: Path) -> Library:
    library = Library([folder], family=Family.SD1, background_hashing=False)
    library.refresh()
    return library


def _used_files(library: Library, prompt: str) -> list[str]:
    report = encode_report(library, prompt, conditioning=False, family=Family.SD1)
    return [Path(item["file"]).name for item in report["embeddings"]]


@pytest.mark.parametrize("stored", TOKEN_EQUAL)
def test_a_token_equal_stored_name_is_a_duplicate(tmp_path, stored):
    assert bundled().encode(stored) == bundled().encode("bad-hands-5")  # the premise: one keyword to the model
    write_safetensors(tmp_path / "emb" / "bad-hands-5.safetensors", {"emb_params": vectors(2)})
    write_image(tmp_path / "emb" / "pretty-cat.png", vectors(5, seed=7), stored)
    library = _scan(tmp_path / "emb")
    picture = next(e for e in library.entries if e.filename == "pretty-cat.png")
    assert library.get("bad-hands-5").filename == "bad-hands-5.safetensors"
    assert library.get(stored) is library.get("bad-hands-5")
    assert picture.status is Status.DUPLICATE and "bad-hands-5.safetensors" in picture.reason
    assert _used_files(library, "a photo, bad-hands-5") == ["bad-hands-5.safetensors"]
    assert _used_files(library, f"a photo, {stored}") == ["bad-hands-5.safetensors"]


def _loaded_alone(folder: Path) -> Entry:
    """An entry that is ``loaded`` in a library of its own (so no collision rule has run between the two)."""
    (entry,) = _scan(folder).usable()
    return entry


@pytest.mark.parametrize("picture_first", [True, False])
def test_the_keyword_index_prefers_the_own_name_whatever_the_order(tmp_path, picture_first):
    own = _loaded_alone(write_safetensors(tmp_path / "a" / "bad-hands-5.safetensors",
                                          {"emb_params": vectors(2)}).parent)
    claimant = _loaded_alone(write_image(tmp_path / "b" / "pretty-cat.png", vectors(5), "bad -hands-5").parent)
    entries = [claimant, own] if picture_first else [own, claimant]
    index = KeywordIndex(entries, bundled())
    for typed in ("bad-hands-5", "bad -hands-5", "embedding:bad-hands-5", "embedding:bad -hands-5"):
        tokens = bundled().encode(typed)
        assert index.match(tokens, 0) == (own, len(tokens)), typed


def test_an_explicit_path_spelling_beats_a_stored_name(tmp_path):
    """``embedding:a/x`` is the path of ``a/x.safetensors``; a picture storing the name ``a/x`` (which sorts
    first) must not take it, neither in the prompt nor in what the diagnostics resolve."""
    write_safetensors(tmp_path / "emb" / "a" / "x.safetensors", {"emb_params": vectors(2)})
    write_image(tmp_path / "emb" / "cat.png", vectors(5, seed=3), "a/x")
    library = _scan(tmp_path / "emb")
    assert explicit.resolve(library, "a/x").filename == "x.safetensors"
    assert explicit.resolve(library, "a / x").filename == "x.safetensors"
    report = encode_report(library, "embedding:a/x", conditioning=False, family=Family.SD1, bare_keywords=False)
    assert [Path(item["file"]).name for item in report["embeddings"]] == ["x.safetensors"]


class _TokenizingHost:
    """Stands in for the WebUI (none is importable here): only ``tokenize``, through the real CLIP tokenizer, which
    is all the database's registration uses."""

    def tokenize(self, model: object, texts: list[str]) -> list[list[int]]:
        return [bundled().encode(text) for text in texts]


@pytest.mark.parametrize("picture_first", [True, False])
def test_the_webui_database_prefers_the_own_name_whatever_the_order(tmp_path, picture_first):
    from sd_embeddings.webui.database import LibraryDatabase

    own = _loaded_alone(write_safetensors(tmp_path / "a" / "bad-hands-5.safetensors",
                                          {"emb_params": vectors(2)}).parent)
    claimant = _loaded_alone(write_image(tmp_path / "b" / "pretty-cat.png", vectors(5), "bad -hands-5").parent)
    db = LibraryDatabase(Library([], background_hashing=False), host=_TokenizingHost())
    model = types.SimpleNamespace(cond_stage_model=object())
    objects = [types.SimpleNamespace(name=entry.keyword, entry=entry) for entry in (own, claimant)]
    for embedding in (objects[::-1] if picture_first else objects):
        db.register_embedding(embedding, model)
    tokens = bundled().encode("a photo of bad-hands-5")
    found, length = db.find_embedding_at_position(tokens, 3)
    assert found is objects[0] and length == 5


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="aB1-_. '\t", max_size=7), st.text(alphabet="aB1-_. '\t", max_size=7))
def test_keys_are_equal_exactly_when_the_token_ids_are(first, second):
    """A small alphabet makes token-equal pairs common (spaces beside punctuation, case, tabs)."""
    same_ids = bundled().encode(first) == bundled().encode(second)
    assert (keyword_key(first) == keyword_key(second)) is same_ids


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40))
def test_ftfy_leaves_printable_ascii_without_ampersand_alone(text):
    """``clip_text`` skips ftfy for such text (its cost is most of a key's): ftfy must agree that nothing changes."""
    ftfy = pytest.importorskip("ftfy")
    assume("&" not in text)
    assert ftfy.fix_text(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40))
def test_the_ascii_shortcut_gives_the_general_key(text):
    assume("&" not in text)
    assert keyword_key(text) == " ".join(clip_text.PIECES.findall(clip_text.normalize(text)))
