"""ComfyUI's ``embedding:name`` and the "bare keywords trigger embeddings" setting in the real WebUI, through its API:
the ``TI hashes`` of a generation are read from the chunks the WebUI itself encoded, so an embedding listed there
was applied. Opt-in: ``WEBUI_DIR`` (see conftest)."""

from __future__ import annotations

import pytest
from factories import vectors, write_a1111_pt
from forks import current
from test_webui import shorthash, ti_hashes

pytestmark = pytest.mark.webui

SETTING = "sd_embeddings_bare_keywords"


def listed_setting(webui) -> bool | None:
    """The setting as ``GET /sdapi/v1/options`` lists it; ``None`` where the fork leaves extensions' settings out
    of that listing (``Fork.options_list_extensions``), which is checked here too."""
    options = webui.get("/sdapi/v1/options")
    if current().options_list_extensions:
        return options[SETTING]
    assert SETTING not in options
    return None


def listed(value: bool) -> bool | None:
    return value if current().options_list_extensions else None


def negemb_hash(webui) -> str:
    return shorthash(webui, "negemb")


def test_embedding_name_is_used_plain_weighted_with_folder_and_inside_prompt_editing(webui):
    expected = f"negemb: {negemb_hash(webui)}"
    assert ti_hashes(webui.txt2img("a cat, embedding:negemb")) == expected
    assert ti_hashes(webui.txt2img("a cat", "(embedding:negemb:1.2), blurry")) == expected
    assert ti_hashes(webui.txt2img("a cat, embedding:negative/negemb.safetensors")) == expected
    # inside [...] a colon is prompt editing, so the embedding is bracketed: from nothing to it halfway
    assert ti_hashes(webui.txt2img("a cat, [(embedding:negemb):0.5]")) == expected
    assert ti_hashes(webui.txt2img("a cat, embedding:nosuchemb")) == ""


def test_with_bare_keywords_off_only_embedding_name_uses_it(webui):
    expected = f"negemb: {negemb_hash(webui)}"
    assert listed_setting(webui) is listed(True)  # the WebUI's way by default
    assert ti_hashes(webui.txt2img("a cat, negemb")) == expected  # and now in the conditioning cache
    webui.post("/sdapi/v1/options", {SETTING: False})
    try:
        assert listed_setting(webui) is listed(False)
        assert ti_hashes(webui.txt2img("a cat, negemb")) == ""  # the same prompt, not served from the cache
        assert ti_hashes(webui.txt2img("a cat, embedding:negemb")) == expected
        assert ti_hashes(webui.txt2img("a cat", "(embedding:negemb:1.2)")) == expected
        assert "negemb" in webui.get("/sdapi/v1/embeddings")["loaded"]  # still listed (tag autocomplete, API)
    finally:
        webui.post("/sdapi/v1/options", {SETTING: True})
    assert ti_hashes(webui.txt2img("a cat, negemb")) == expected


def test_a_duplicates_own_name_means_the_keywords_file(webui):
    """``old/deeper/negemb.pt`` loses the keyword to ``negative/negemb.safetensors`` (shallower): its own names,
    tokenized by the model's tokenizer, use the keyword's file (the tab says it "is used instead"). Bare keywords
    are off here, so the bare ``negemb`` inside the name cannot be what matched."""
    expected = f"negemb: {negemb_hash(webui)}"
    duplicate = write_a1111_pt(webui.embeddings / "old" / "deeper" / "negemb.pt", vectors(3, seed=11))
    webui.post("/sdapi/v1/options", {SETTING: False})
    try:
        assert ti_hashes(webui.txt2img("a cat, embedding:old/deeper/negemb.pt")) == expected
        assert ti_hashes(webui.txt2img("a cat", "(embedding:negemb.pt:1.1)")) == expected
    finally:
        webui.post("/sdapi/v1/options", {SETTING: True})
        duplicate.unlink()
