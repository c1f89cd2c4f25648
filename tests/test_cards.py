"""Card view models, the negative rule and the tab's HTTP routes (no browser; rendering is tested in Chromium)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors
from PIL import Image

from sd_embeddings.library import Library
from sd_embeddings.records import Family
from sd_embeddings.tab import card_rows, cards, first_page, shell

XSS = "<img src=x onerror=alert(1)>"


@pytest.mark.parametrize("name, folder", [
    ("EasyNegative", ""), ("bad-hands-5", ""), ("negative_hand-neg", ""), ("FastNegativeV2", ""),
    ("veryBadImageNegative", ""), ("BadDream", ""), ("UnrealisticDream", ""), ("ng_deepnegative_v1_75t", ""),
    ("bad_prompt_version2", ""), ("aidxlv05_neg", ""), ("style-neg", ""), ("anything", "negative"),
    ("anything", "packs/Negatives"), ("anything", "neg/sub"), ("badhandv4", ""),
])
def test_known_negatives(name: str, folder: str) -> None:
    assert cards.is_known_negative(name, folder)


@pytest.mark.parametrize("name, folder", [
    ("cat", ""), ("negotiator", ""), ("badge", ""), ("neon-style", ""), ("dream", ""), ("cat", "negotiable"),
])
def test_ordinary_names_are_not_negative(name: str, folder: str) -> None:
    assert not cards.is_known_negative(name, folder)


def test_user_metadata_overrides_the_automatic_target() -> None:
    assert cards.resolve_target("EasyNegative", "", {"target": "positive"}) == ("positive", "user")
    assert cards.resolve_target("cat", "", {"target": "negative"}) == ("negative", "user")
    assert cards.resolve_target("cat", "", {"target": "bogus"}) == ("focused", "auto")
    assert cards.resolve_target("EasyNegative", "", {}) == ("negative", "auto")


@pytest.mark.parametrize("value, expected", [(1.2, 1.2), ("0.8", 0.8), (1, None), (0, None), ("x", None),
                                             (None, None), (float("nan"), None), (1e9, None)])
def test_prompt_weight(value: object, expected: float | None) -> None:
    assert cards.prompt_weight({"preferred weight": value}) == expected


@pytest.fixture
def library(tmp_path: Path) -> Library:
    write_a1111_pt(tmp_path / "cat.pt", vectors(3))
    (tmp_path / "cat.preview.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    write_safetensors(tmp_path / "sub" / f"{XSS}.safetensors", {"emb_params": vectors(1)})
    (tmp_path / "sub" / f"{XSS}.txt").write_text("<script>alert(2)</script>", encoding="utf-8")
    write_safetensors(tmp_path / "xl" / "big.safetensors", sdxl_vectors(2))
    write_safetensors(tmp_path / "other" / "cat.safetensors", {"emb_params": vectors(1)})
    (tmp_path / "broken.pt").write_bytes(b"nope")
    Image.new("RGB", (8, 8), (200, 100, 50)).save(tmp_path / "photo.png")
    lib = Library([tmp_path], family=Family.SD1, background_hashing=False)
    lib.refresh()
    return lib


def test_card_models_cover_embeddings_only(library: Library) -> None:
    models = {m.relpath: m for m in cards.card_models(library)}
    assert set(models) == {"cat.pt", f"sub/{XSS}.safetensors", "xl/big.safetensors", "other/cat.safetensors"}
    cat = models["cat.pt"]
    assert (cat.family, cat.vectors, cat.status, cat.target) == ("SD1", 3, "loaded", "focused")
    assert cat.preview.startswith("./sd-embeddings/v1/preview?root=0&path=cat.preview.png")
    assert cat.collides_with == ["other/cat.safetensors"]
    assert models["other/cat.safetensors"].collides_with == ["cat.pt"]
    assert models["other/cat.safetensors"].status == "duplicate"
    big = models["xl/big.safetensors"]
    assert big.status == "incompatible" and "model is SD1.5" in big.reason


def test_problems_list_broken_files_and_quietly_plain_pictures(library: Library) -> None:
    rows = {r["relpath"]: r for r in cards.problem_rows(library)}
    assert not rows["broken.pt"]["quiet"] and rows["broken.pt"]["reason"]
    assert rows["photo.png"]["quiet"]


def test_payload_is_json_and_rows_follow_fields(library: Library) -> None:
    doc = json.loads(json.dumps(cards.cards_payload(library)))
    rows = card_rows.expand(doc)
    assert [r["keyword"] for r in rows][0] == XSS
    assert doc["folders"] == ["", "other", "sub", "xl"]
    assert doc["family"] == "sd1" and doc["version"] == library.version


def test_routes(library: Library, tmp_path: Path) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from sd_embeddings.tab import guard
    from sd_embeddings.tab.routes import make_router

    app = FastAPI()
    app.include_router(make_router(lambda: library))
    # writes as the tab's script sends them: this host's Origin and the page token (tab/guard.py)
    client = TestClient(app, headers={"origin": "http://testserver", guard.TOKEN_HEADER: guard.page_token()})
    assert client.get("/sd-embeddings/v1/cards").json()["fields"] == list(card_rows.ROW_FIELDS)
    assert client.get("/sd-embeddings/v1/preview", params={"root": 0, "path": "cat.preview.png"}).status_code == 200
    for bad in ("../cat.preview.png", "/etc/passwd", "cat.pt", "sub/../cat.preview.png", "..%2fcat.preview.png"):
        assert client.get("/sd-embeddings/v1/preview", params={"root": 0, "path": bad}).status_code == 404, bad
    assert client.get("/sd-embeddings/v1/preview", params={"root": 7, "path": "cat.preview.png"}).status_code == 404
    saved = client.post("/sd-embeddings/v1/metadata", json={"id": "0/cat.pt", "target": "negative", "weight": "0.7",
                                                             "notes": "n", "description": "d"})
    assert saved.status_code == 200 and saved.json()["card"]["target"] == "negative"
    on_disk = json.loads((tmp_path / "cat.json").read_text(encoding="utf-8"))
    assert on_disk == {"target": "negative", "preferred weight": 0.7, "notes": "n", "description": "d"}
    again = client.post("/sd-embeddings/v1/metadata", json={"id": "0/cat.pt", "target": "auto", "weight": ""})
    assert "target" not in again.json()["metadata"] and "preferred weight" not in again.json()["metadata"]
    assert client.post("/sd-embeddings/v1/metadata", json={"id": "0/../x", "notes": "n"}).status_code == 404
    assert client.post("/sd-embeddings/v1/metadata", json={"id": "0/cat.pt", "target": "up"}).status_code == 400
    assert client.post("/sd-embeddings/v1/metadata", json={"id": "0/cat.pt", "weight": "inf"}).status_code == 400
    meta = client.get("/sd-embeddings/v1/metadata", params={"id": "0/cat.pt"}).json()
    assert meta["file"] == {**meta["file"], "sha256": "", "sha256_state": "pending"} and meta["description"] == "d"
    library.hash_all()  # what the background pass does; the GET itself never hashes
    meta = client.get("/sd-embeddings/v1/metadata", params={"id": "0/cat.pt"}).json()
    assert len(meta["file"]["sha256"]) == 64 and meta["file"]["sha256_state"] == "known"


def test_auto_negative_can_be_switched_off_but_the_users_choice_stays(tmp_path):
    """The WebUI setting ``sd_embeddings_auto_negative`` reaches cards.py as ``auto_negative``."""
    from factories import vectors, write_safetensors

    from sd_embeddings.library import Library
    from sd_embeddings.tab import cards

    write_safetensors(tmp_path / "negative" / "EasyNegative.safetensors", {"emb_params": vectors(2)})
    write_safetensors(tmp_path / "style.safetensors", {"emb_params": vectors(1)})
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    library.save_user_metadata(library.get("style"), {"target": "negative"})
    library.refresh()
    on = {c.keyword: c.target for c in cards.card_models(library)}
    off = {c.keyword: c.target for c in cards.card_models(library, auto_negative=False)}
    assert on == {"EasyNegative": "negative", "style": "negative"}
    assert off == {"EasyNegative": "focused", "style": "negative"}


def inline_doc(markup: str) -> dict:
    opening = '<script type="application/json" class="sdemb-doc">'
    assert markup.count("<script") == 1 and markup.count("</script") == 1
    return json.loads(markup.partition(opening)[2].partition("</script>")[0])


def test_shell_has_the_webui_ids_and_no_card_markup(library: Library) -> None:
    markup = shell.pane_html(library)
    for suffix in ("extra_search", "extra_sort", "extra_sort_dir", "extra_refresh", "cards", "tree", "problems"):
        assert f'id="txt2img_textual_inversion_{suffix}"' in markup
    assert "class=\"card" not in markup and "broken.pt" not in markup.partition("<script")[0]
    assert inline_doc(markup) == json.loads(json.dumps(first_page.first_page_payload(library)))


def test_inline_document_cannot_close_its_script_element(tmp_path: Path) -> None:
    """A description (free text) and a folder name that read ``</script>``, ``<!--`` and ``&``: the JSON text has
    no ``<``, ``>`` or ``&`` at all, and parses back to the exact strings."""
    hostile = "</script><script>alert(1)</script><!-- &amp; </SCRIPT >"
    write_safetensors(tmp_path / "<" / "script>x.safetensors", {"emb_params": vectors(1)})
    (tmp_path / "<" / "script>x.txt").write_text(hostile, encoding="utf-8")
    lib = Library([tmp_path], family=Family.SD1, background_hashing=False)
    lib.refresh()
    markup = shell.pane_html(lib)
    text = markup.partition('class="sdemb-doc">')[2].rpartition("</script>")[0]
    assert not set(text) & set("<>&")
    doc = inline_doc(markup)
    row = card_rows.expand(doc)[0]
    assert row["description"] == hostile and row["relpath"] == "</script>x.safetensors"
