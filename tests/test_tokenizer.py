"""The bundled CLIP tokenizer: known ids, agreement with transformers' tokenizer, local folders."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize("prompt", PROMPTS)
def test_matches_transformers_clip_tokenizer(tmp_path, prompt: str) -> None:
    transformers = pytest.importorskip("transformers")
    tk.bundled().save_folder(tmp_path)
    reference = transformers.CLIPTokenizer.from_pretrained(str(tmp_path))
    expected = reference(prompt, add_special_tokens=False)["input_ids"]
    assert tk.bundled().encode(prompt) == expected
    assert tk.TransformersTokenizer(reference).encode(prompt) == expected


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
