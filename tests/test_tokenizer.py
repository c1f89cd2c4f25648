"""The bundled CLIP tokenizer: known ids, agreement with transformers' tokenizer, local folders."""

from __future__ import annotations

import logging
import sys

import pytest

from sd_embeddings.library import clip_text
from sd_embeddings.prompt import tokenizer as tk

PROMPTS = [
    "a photo of a cat",
    "EasyNegative, (bad-hands-5:1.2), [negative_hand], ((masterpiece)), \\(literal\\)",
    "Ünïcödé café naïve 日本語 テスト 😀 emoji, Straße İstanbul",
    "hello\tworld  \n  multiple   spaces",
    "it's they're we'll I'd 123abc 4.5 1,000,000",
    "x!!!'s ...,,, --- ¿qué? «quoted» ﬁ ² ½",
    "a BREAK b AND c <lora:foo:0.8> {x|y} [from:to:0.5]",
    "",
]
# Text the WebUI's tokenizer (transformers 4.x CLIPTokenizer with ftfy) changes before BPE: curly quotes,
# full-width letters, HTML entities, mojibake, ligatures, emoji, combining accents.
FTFY_PROMPTS = [
    "it’s a “quoted” cat",
    "ＣＡＴ on a ｔａｂｌｅ",
    "salt &amp; pepper &lt;3",
    "cafÃ© au lait",
    "ﬁsh and ﬂower",
    "😀 🐱‍👤 emoji",
    "café naïve",
    "‘single’ — dash …",
]
# What each of those must tokenize like (ftfy's documented fixes, written out by hand).
FTFY_SAME_AS = {
    "it’s a “quoted” cat": "it's a \"quoted\" cat",
    "ＣＡＴ on a ｔａｂｌｅ": "cat on a table",
    "salt &amp; pepper &lt;3": "salt & pepper <3",
    "cafÃ© au lait": "café au lait",
    "ﬁsh and ﬂower": "fish and flower",
    "café naïve": "café naïve",
}


def with_specials(ids: list[int]) -> list[int]:
    tok = tk.bundled()
    return [tok.bos_id, *ids, tok.eos_id]


def test_photo_of_a_cat_has_the_known_ids() -> None:
    assert with_specials(tk.bundled().encode("a photo of a cat")) == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_special_ids() -> None:
    tok = tk.bundled()
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.comma_id) == (49406, 49407, 49407, 267)
    assert len(tok.vocab) == 49408
    assert isinstance(tok, tk.Tokenizer)


def test_case_and_whitespace_do_not_change_ids() -> None:
    tok = tk.bundled()
    assert tok.encode("EasyNegative") == tok.encode("easynegative") == tok.encode("  EASYNEGATIVE ")
    assert tok.encode("bad hands") == tok.encode("bad \n hands")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """transformers' CLIPTokenizer built offline from the bundled vocabulary."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("clip-tokenizer")
    tk.bundled().save_folder(folder)
    return transformers.CLIPTokenizer.from_pretrained(str(folder))


@pytest.mark.parametrize("prompt", PROMPTS + FTFY_PROMPTS)
def test_matches_transformers_clip_tokenizer_with_ftfy(reference, prompt: str) -> None:
    """The WebUI's CLIPTokenizer (transformers 4.x, slow) runs ``ftfy.fix_text`` before its NFC/whitespace/lower
    normalisation and BPE. transformers 5's CLIPTokenizer no longer calls ftfy itself, so the reference here is
    that tokenizer fed ``ftfy.fix_text(prompt)``: the same steps in the same order."""
    ftfy = pytest.importorskip("ftfy")
    expected = reference(ftfy.fix_text(prompt), add_special_tokens=False)["input_ids"]
    assert tk.bundled().encode(prompt) == expected
    assert tk.TransformersTokenizer(reference).encode(ftfy.fix_text(prompt)) == expected


@pytest.mark.parametrize("prompt", sorted(FTFY_SAME_AS))
def test_unicode_look_alikes_tokenize_like_the_plain_text(prompt: str) -> None:
    pytest.importorskip("ftfy")
    tok = tk.bundled()
    assert tok.encode(prompt) == tok.encode(FTFY_SAME_AS[prompt])


def test_without_ftfy_falls_back_to_nfc_and_logs_once(monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "ftfy", None)  # what a host without ftfy sees: import fails
    clip_text.ftfy_fix_text.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger=clip_text.__name__):
            assert tk.normalize("  Cafe\u0301   \uff23\uff21\uff34 ") == "caf\u00e9 \uff43\uff41\uff54"
            assert tk.normalize("it\u2019s") == "it\u2019s"
        assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
        assert "ftfy is not installed" in caplog.records[0].message
    finally:
        clip_text.ftfy_fix_text.cache_clear()


def test_folder_round_trip_and_for_model(tmp_path) -> None:
    tk.bundled().save_folder(tmp_path / "tokenizer")
    local = tk.for_model(tmp_path)
    assert local is not tk.bundled()
    for prompt in PROMPTS:
        assert local.encode(prompt) == tk.bundled().encode(prompt)
    assert tk.for_model(tmp_path / "nothing-here") is tk.bundled()
    assert tk.for_model(None) is tk.bundled()


def test_decode_for_display() -> None:
    tok = tk.bundled()
    assert tok.decode(tok.encode("EasyNegative, café")) == "easynegative , café"
