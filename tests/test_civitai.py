"""Civitai sidecars (read, never written): Civitai Helper's ``x.civitai.info`` (a model version, or an older
Browser+'s model), Browser+'s ``x.api_info.json`` and ``x.json`` keys, their first saved image as the preview, and
what the cards show. Every file is written here, in the shapes those extensions write."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors

from sd_embeddings.library import Library, civitai
from sd_embeddings.records import Family
from sd_embeddings.tab import cards, details

HELPER_INFO = {  # what Civitai Helper writes: the API's model version for the file's hash
    "id": 9208, "modelId": 7808, "name": "EasyNegative", "baseModel": "SD 1.5", "trainedWords": ["easynegative"],
    "description": None, "model": {"name": "EasyNegative", "type": "TextualInversion", "nsfw": False},
    "files": [{"name": "easynegative.safetensors", "hashes": {"SHA256": "C74B4E810B"}}],
    "images": [{"url": "https://image.civitai.com/a/width=450/1.jpeg", "nsfw": "None", "type": "image"},
               {"url": "https://image.civitai.com/a/width=450/2.jpeg", "nsfw": "None", "type": "image"}],
}
BROWSER_MODEL = {  # Browser+'s api_info (and older Browser+'s civitai.info): the whole model
    "id": 4629, "name": "Deep Negative V1.x", "type": "TextualInversion",
    "description": "<p>This embedding <strong>fixes</strong> hands.</p><p>Use it in the negative prompt.</p>",
    "modelVersions": [
        {"id": 1, "name": "V1 75T", "baseModel": "SD 1.5", "trainedWords": ["ng_deepnegative_v1_75t"],
         "files": [{"name": "ng_deepnegative_v1_75t.pt"}], "images": []},
        {"id": 2, "name": "XL", "baseModel": "SDXL 1.0", "trainedWords": ["deepnegative_xl"],
         "files": [{"name": "deepnegative_xl.safetensors"}], "images": [{"url": "https://x/1.jpeg"}]},
    ],
}


def scanned(folder: Path, family: Family | None = Family.SD1) -> Library:
    library = Library([folder], family=family, background_hashing=False)
    library.refresh()
    return library


def card_of(library: Library, keyword: str) -> cards.CardModel:
    return next(c for c in cards.card_models(library) if c.keyword == keyword)


def test_civitai_helper_info_gives_base_model_and_trigger_words(tmp_path):
    write_safetensors(tmp_path / "easynegative.safetensors", {"emb_params": vectors(2)})
    (tmp_path / "easynegative.civitai.info").write_text(json.dumps(HELPER_INFO, indent=4))
    library = scanned(tmp_path)
    (entry,) = library.entries
    assert entry.sidecars.civitai_file == "easynegative.civitai.info"
    found = library.civitai_summary(entry)
    assert (found.base_model, found.specific, found.family) == ("SD 1.5", True, Family.SD1)
    assert found.trigger_words == ("easynegative",) and found.images == 2
    assert found.model_name == "EasyNegative" and found.sources == ("easynegative.civitai.info",)
    assert card_of(library, "easynegative").base_model == "SD 1.5"


def test_a_model_shaped_sidecar_uses_the_version_listing_this_file(tmp_path):
    write_safetensors(tmp_path / "deepnegative_xl.safetensors", sdxl_vectors(2))
    (tmp_path / "deepnegative_xl.api_info.json").write_text(json.dumps(BROWSER_MODEL))
    library = scanned(tmp_path, Family.SDXL)
    found = library.civitai_summary(library.entries[0])
    assert (found.base_model, found.version_name, found.trigger_words) == ("SDXL 1.0", "XL", ("deepnegative_xl",))
    assert found.description == "This embedding fixes hands.\nUse it in the negative prompt."
    card = card_of(library, "deepnegative_xl")
    assert card.description == found.description and card.base_model == "SDXL 1.0"


def test_the_maintained_helpers_layout_gives_the_models_description_not_the_versions(tmp_path):
    """zixaphir's Civitai Helper (1.7.2 on) moves the model's description into ``model`` and keeps the version's
    notes at the top; older files and the bare API answer have only the top one."""
    write_safetensors(tmp_path / "easynegative.safetensors", {"emb_params": vectors(2)})
    info = {**HELPER_INFO, "description": "<p>v2: trained longer</p>",
            "model": {**HELPER_INFO["model"], "description": "<p>A negative for <b>anime</b> models.</p>",
                      "allowNoCredit": True}, "extensions": {"sd_civitai_helper": {"version": "1.7.2"}}}
    (tmp_path / "easynegative.civitai.info").write_text(json.dumps(info))
    library = scanned(tmp_path)
    assert library.civitai_summary(library.entries[0]).description == "A negative for anime models."
    (tmp_path / "easynegative.civitai.info").write_text(json.dumps({**info, "model": HELPER_INFO["model"]}))
    library = scanned(tmp_path)
    assert library.civitai_summary(library.entries[0]).description == "v2: trained longer"


def test_our_description_wins_and_the_sidecars_description_fills_an_empty_one(tmp_path):
    for name in ("ours", "theirs"):
        write_a1111_pt(tmp_path / f"{name}.pt", vectors(1))
        (tmp_path / f"{name}.civitai.info").write_text(json.dumps(BROWSER_MODEL))
    (tmp_path / "ours.txt").write_text("my own words", encoding="utf-8")
    library = scanned(tmp_path)
    assert card_of(library, "ours").description == "my own words"
    assert card_of(library, "theirs").description.startswith("This embedding fixes hands.")


def test_browser_plus_json_keys_are_read_and_kept_when_we_write(tmp_path):
    """Browser+ merges its keys into the WebUI's ``x.json``; saving our target and weight keeps every one of them."""
    write_a1111_pt(tmp_path / "bad-hands-5.pt", vectors(1))
    theirs = {"activation text": "bad-hands-5, bad hands", "description": "Negative for hands", "sd version": "SD1",
              "modelId": 116230, "modelVersionId": 125849, "sha256": "AA" * 32, "notes": "from the WebUI"}
    (tmp_path / "bad-hands-5.json").write_text(json.dumps(theirs, indent=4))
    library = scanned(tmp_path)
    entry = library.entries[0]
    found = library.civitai_summary(entry)
    assert found.trigger_words == ("bad-hands-5", "bad hands") and found.base_model == "SD1"
    assert not found.specific and card_of(library, "bad-hands-5").base_model == ""  # says no more than the badge
    library.save_user_metadata(entry, {"target": "negative", "preferred weight": 0.8})
    written = json.loads((tmp_path / "bad-hands-5.json").read_text())
    assert written == {**theirs, "target": "negative", "preferred weight": 0.8}


def test_sidecars_are_never_written(tmp_path):
    write_a1111_pt(tmp_path / "cat.pt", vectors(1))
    info = tmp_path / "cat.civitai.info"
    info.write_text(json.dumps(HELPER_INFO))
    before = (info.read_bytes(), info.stat().st_mtime_ns)
    library = scanned(tmp_path)
    library.save_user_metadata(library.entries[0], {"description": "x"})
    library.save_preview(library.entries[0], b"\x89PNG\r\n\x1a\n")
    cards.cards_payload(library)
    assert (info.read_bytes(), info.stat().st_mtime_ns) == before


def test_browser_plus_first_saved_image_is_the_preview_only_when_there_is_none(tmp_path):
    for name in ("alone", "has-preview", "no-sidecar"):
        write_a1111_pt(tmp_path / f"{name}.pt", vectors(1))
        (tmp_path / f"{name}_0.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"0" * 64)
    for name in ("alone", "has-preview"):
        (tmp_path / f"{name}.civitai.info").write_text(json.dumps(HELPER_INFO))
    (tmp_path / "has-preview.preview.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    library = scanned(tmp_path)
    previews = {e.keyword: e.sidecars.preview for e in library.entries}
    assert previews == {"alone": "alone_0.jpg", "has-preview": "has-preview.preview.png", "no-sidecar": None}
    assert details.preview_kind(next(e for e in library.entries if e.keyword == "alone")) == "civitai"


def test_a_claimed_first_image_is_not_listed_as_a_plain_picture(tmp_path):
    """PNGs are scanned (they may carry an embedding): ``x_0.png`` beside ``x.pt`` with a sidecar is its picture."""
    from PIL import Image

    for name in ("claimed", "unclaimed"):
        write_a1111_pt(tmp_path / f"{name}.pt", vectors(1))
        for index in (0, 1):
            Image.new("RGB", (4, 4)).save(tmp_path / f"{name}_{index}.png")
    (tmp_path / "claimed.json").write_text(json.dumps({"activation text": "claimed"}))
    library = scanned(tmp_path)
    listed = {e.relpath for e in library.entries}
    assert "claimed_0.png" not in listed and library.entries[0].sidecars.preview == "claimed_0.png"
    assert {"claimed_1.png", "unclaimed_0.png", "unclaimed_1.png"} <= listed  # only a sidecar's first image


def test_a_new_sidecar_is_noticed_by_a_rescan(tmp_path):
    write_a1111_pt(tmp_path / "cat.pt", vectors(1))
    library = scanned(tmp_path)
    assert card_of(library, "cat").base_model == ""
    (tmp_path / "cat.civitai.info").write_text(json.dumps({**HELPER_INFO, "baseModel": "Illustrious"}))
    assert library.refresh().sidecars_changed
    assert card_of(library, "cat").base_model == "Illustrious"


def test_an_edited_sidecar_is_read_again(tmp_path):
    write_a1111_pt(tmp_path / "cat.pt", vectors(1))
    info = tmp_path / "cat.civitai.info"
    info.write_text(json.dumps(HELPER_INFO))
    library = scanned(tmp_path)
    assert library.civitai_summary(library.entries[0]).base_model == "SD 1.5"
    info.write_text(json.dumps({**HELPER_INFO, "baseModel": "SD 1.5 Hyper"}))
    os.utime(info, ns=(info.stat().st_atime_ns, info.stat().st_mtime_ns + 10**9))
    assert library.civitai_summary(library.entries[0]).base_model == "SD 1.5 Hyper"


@pytest.mark.parametrize("label, family", [
    ("SD 1.4", Family.SD1), ("SD 1.5 LCM", Family.SD1), ("SD 2.1 768", Family.SD2), ("SDXL 1.0", Family.SDXL),
    ("SDXL Turbo", Family.SDXL), ("Pony", Family.SDXL), ("Illustrious", Family.SDXL), ("NoobAI", Family.SDXL),
    ("Flux.1 D", None), ("Other", None), ("", None),
])
def test_base_model_family(label: str, family: Family | None) -> None:
    assert civitai.base_model_family(label) is family


def test_the_dialog_says_when_the_label_and_the_vectors_disagree(tmp_path):
    write_safetensors(tmp_path / "xl.safetensors", sdxl_vectors(1))
    (tmp_path / "xl.civitai.info").write_text(json.dumps(HELPER_INFO))  # says SD 1.5
    library = scanned(tmp_path, Family.SDXL)
    info = details.civitai_info(library, library.entries[0])
    assert info["mismatch"] == "Civitai lists it for SD 1.5; its vectors are SDXL"


def test_html_becomes_plain_text() -> None:
    html = ('<h2>Title</h2><p>one &amp; <a href="javascript:alert(1)">two</a></p><script>alert(3)</script>'
            '<style>p{}</style><img src=x onerror=alert(4)><p>\u202eevil\x1b[2J</p>')
    assert civitai.html_to_text(html) == "Title\none & two\nevil [2J"
    assert civitai.html_to_text(None) == "" and civitai.html_to_text(["<p>"]) == ""
