"""The dialog's routes: ``GET /inspect`` (norms, flags, same vectors), ``POST /inspect/nearest`` (nearest tokens,
guarded, one at a time), the preview facts and Civitai section of ``GET /metadata``, and replacing the plain
``x.png`` that shadows ``x.preview.png`` (``POST /preview?replace=shown``).

Faked: ``TableVocabulary`` hands out a fixed token table (what a host's ``Vocabulary`` returns) for the route tests;
``test_nearest_tokens_from_a_local_checkpoint`` uses the standalone host's real ``ModelVocabulary`` on a real
checkpoint file instead."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from factories import sdxl_vectors, vectors, write_a1111_pt, write_image, write_safetensors
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from token_tables import crafted_sd1_checkpoint, crafted_table, token_id

from sd_embeddings.encode.vocabulary import ModelVocabulary
from sd_embeddings.library import Library
from sd_embeddings.library.vectors import TokenTable
from sd_embeddings.records import Family
from sd_embeddings.tab import guard, inspector
from sd_embeddings.tab.routes import make_router

API = "/sd-embeddings/v1"
CAT, DOG = vectors(1, seed=21)[0], vectors(1, seed=22)[0]


class TableVocabulary:
    def __init__(self, tables: dict[int, torch.Tensor] | None) -> None:
        self.tables = tables

    def state(self) -> tuple[str, str]:
        return ("ready", "a test table") if self.tables else ("none", "no table here")

    def table(self) -> TokenTable:
        return TokenTable(self.tables or {}, lambda t: f"tok{t}", "a test table")


def client_for(library: Library, vocabulary=None) -> TestClient:
    app = FastAPI()
    app.include_router(make_router(lambda: library, vocabulary=vocabulary))
    return TestClient(app, headers={"origin": "http://testserver", guard.TOKEN_HEADER: guard.page_token()})


def scanned(folder: Path, family: Family | None = Family.SD1) -> Library:
    library = Library([folder], family=family, background_hashing=False)
    library.refresh()
    return library


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (20, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def nearest(client: TestClient, card_id: str, **headers: str):
    return client.post(f"{API}/inspect/nearest", params={"id": card_id},
                       headers={"content-type": "application/json", **headers})


def test_inspect_reports_norms_zero_vectors_and_every_copy(tmp_path: Path) -> None:
    vec = vectors(4, seed=3)
    vec[1] = 0
    write_a1111_pt(tmp_path / "EasyNegative.pt", vec)
    write_safetensors(tmp_path / "sub" / "EasyNegative.safetensors", {"emb_params": vec.half()})
    write_image(tmp_path / "pictures" / "renamed.png", vec, "renamed")
    write_a1111_pt(tmp_path / "other.pt", vectors(4, seed=4))
    library = scanned(tmp_path)
    assert all(e.fingerprint is None for e in library.entries)  # no background pass: compared on demand
    found = client_for(library).get(f"{API}/inspect", params={"id": "0/EasyNegative.pt"}).json()
    (part,) = found["parts"]
    assert part["width"] == 768 and part["zero"] == [1] and part["nonfinite"] == []
    assert part["norms"][1] == 0.0 and part["norms"][0] == pytest.approx(float(vec[0].norm()), abs=1e-3)
    copies = sorted(t["relpath"] for t in found["same_vectors"])
    assert copies == ["pictures/renamed.png", "sub/EasyNegative.safetensors"]
    assert found["compared_all"] and found["nearest"] == {"state": "none", "detail": "this host has no text encoder"}


def test_inspect_compares_a_bounded_number_of_files(tmp_path: Path, monkeypatch) -> None:
    for i in range(5):
        write_a1111_pt(tmp_path / f"e{i}.pt", vectors(2, seed=i))
    monkeypatch.setattr(inspector, "MAX_COMPARE_LOADS", 2)
    library = scanned(tmp_path)
    found = client_for(library).get(f"{API}/inspect", params={"id": "0/e0.pt"}).json()
    assert found["compared_all"] is False
    assert sum(e.fingerprint is not None for e in library.entries) == 3  # itself and two others


def test_a_file_with_nan_vectors_says_which(tmp_path: Path) -> None:
    vec = vectors(3)
    vec[2, 0] = float("nan")
    write_a1111_pt(tmp_path / "broken.pt", vec)
    library = scanned(tmp_path)  # headers only: listed as a card until its values are read
    found = client_for(library).get(f"{API}/inspect", params={"id": "0/broken.pt"}).json()
    assert found == {"error": "1 of 3 vectors contain NaN or infinite values (vector 3)"}


def test_nearest_tokens_per_part_and_a_missing_width(tmp_path: Path) -> None:
    write_a1111_pt(tmp_path / "petmix.pt", torch.stack([CAT, DOG]))
    xl = sdxl_vectors(1)
    write_safetensors(tmp_path / "xl.safetensors", {"clip_l": CAT[None], "clip_g": xl["clip_g"]})
    table = crafted_table({"cat": CAT, "dog": DOG})
    client = client_for(scanned(tmp_path, None), TableVocabulary({768: table}))
    answer = nearest(client, "0/petmix.pt").json()
    (part,) = answer["parts"]
    assert [row[0]["id"] for row in part["vectors"]] == [token_id("cat"), token_id("dog")]
    assert part["vectors"][0][0]["cosine"] == pytest.approx(1.0, abs=1e-3) and len(part["vectors"][0]) == 5
    xl_answer = nearest(client, "0/xl.safetensors").json()
    by_key = {p["key"]: p for p in xl_answer["parts"]}
    assert by_key["clip_l"]["vectors"][0][0]["cosine"] == pytest.approx(1.0, abs=1e-3)
    assert by_key["clip_g"]["error"] == "a test table has no 1280-wide token table"


def test_nearest_is_guarded_needs_a_table_and_runs_one_at_a_time(tmp_path: Path) -> None:
    write_a1111_pt(tmp_path / "cat.pt", CAT[None])
    library = scanned(tmp_path)
    client = client_for(library, TableVocabulary({768: crafted_table({"cat": CAT})}))
    assert nearest(client, "0/cat.pt", **{guard.TOKEN_HEADER: "wrong"}).status_code == 403
    assert client.post(f"{API}/inspect/nearest", params={"id": "0/cat.pt"},
                       headers={"content-type": "text/plain"}).status_code == 403
    assert nearest(client_for(library), "0/cat.pt").status_code == 409
    refused = nearest(client_for(library, TableVocabulary(None)), "0/cat.pt")
    assert refused.status_code == 200 and refused.json()["parts"][0]["error"]  # an empty table: said per part
    assert nearest(client, "0/nope.pt").status_code == 404
    assert inspector._slot.acquire(blocking=False)
    try:
        busy = nearest(client, "0/cat.pt")
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
    finally:
        inspector._slot.release()
    assert nearest(client, "0/cat.pt").status_code == 200


def test_nearest_tokens_from_a_local_checkpoint(tmp_path: Path) -> None:
    """The standalone host's vocabulary: ``loadable`` until the first lookup loads the checkpoint's text encoder."""
    folder = tmp_path / "emb"
    write_a1111_pt(folder / "petmix.pt", torch.stack([CAT, DOG]))
    checkpoint = crafted_sd1_checkpoint(tmp_path / "tiny.safetensors", {"cat": CAT, "dog": DOG})
    vocabulary = ModelVocabulary(checkpoint)
    client = client_for(scanned(folder), vocabulary)
    assert client.get(f"{API}/inspect", params={"id": "0/petmix.pt"}).json()["nearest"]["state"] == "loadable"
    answer = nearest(client, "0/petmix.pt").json()
    assert [row[0]["token"] for row in answer["parts"][0]["vectors"]] == ["cat", "dog"]
    assert vocabulary.state()[0] == "ready"
    assert ModelVocabulary(None).state()[0] == "none"


def test_metadata_tells_where_the_preview_comes_from(tmp_path: Path) -> None:
    write_a1111_pt(tmp_path / "shadowed.pt", vectors(1))
    (tmp_path / "shadowed.png").write_bytes(png_bytes((250, 0, 0)))
    (tmp_path / "shadowed.preview.png").write_bytes(png_bytes((0, 250, 0)))
    write_a1111_pt(tmp_path / "uploaded.pt", vectors(1))
    (tmp_path / "uploaded.preview.png").write_bytes(png_bytes((0, 250, 0)))
    write_image(tmp_path / "picture.png", vectors(1), "picture")
    client = client_for(scanned(tmp_path))
    facts = {name: client.get(f"{API}/metadata", params={"id": f"0/{name}"}).json()["preview"]
             for name in ("shadowed.pt", "uploaded.pt", "picture.png")}
    assert facts["shadowed.pt"] == {"shown": "shadowed.png", "kind": "file", "upload_name": "shadowed.preview.png",
                                    "shadowed_by": "shadowed.png"}
    assert facts["uploaded.pt"]["kind"] == "upload" and facts["uploaded.pt"]["shadowed_by"] == ""
    assert facts["picture.png"]["kind"] == "own" and facts["picture.png"]["shadowed_by"] == ""


def test_replacing_the_shadowing_png(tmp_path: Path) -> None:
    write_a1111_pt(tmp_path / "shadowed.pt", vectors(1))
    (tmp_path / "shadowed.png").write_bytes(png_bytes((250, 0, 0)) + b"trailing bytes are never kept")
    library = scanned(tmp_path)
    client = client_for(library)
    upload = io.BytesIO()
    Image.new("RGB", (30, 20), (0, 0, 250)).save(upload, format="JPEG")
    answer = client.post(f"{API}/preview", params={"id": "0/shadowed.pt", "replace": "shown"},
                         content=upload.getvalue(), headers={"content-type": "image/jpeg"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["preview"] == "shadowed.png" and answer.json()["shadowed_by"] == ""
    with Image.open(tmp_path / "shadowed.png") as written:
        assert written.format == "PNG" and written.size == (30, 20)
    assert not (tmp_path / "shadowed.preview.png").exists()
    assert b"trailing" not in (tmp_path / "shadowed.png").read_bytes()


def test_replace_shown_is_refused_when_nothing_shadows_or_for_an_image_embedding(tmp_path: Path) -> None:
    write_a1111_pt(tmp_path / "plain.pt", vectors(1))
    write_image(tmp_path / "picture.png", vectors(1), "picture")
    before = (tmp_path / "picture.png").read_bytes()
    library = scanned(tmp_path)
    client = client_for(library)
    for card_id in ("0/plain.pt", "0/picture.png"):
        answer = client.post(f"{API}/preview", params={"id": card_id, "replace": "shown"},
                             content=png_bytes((1, 2, 3)), headers={"content-type": "image/png"})
        assert answer.status_code == 400 and "nothing to replace" in answer.json()["detail"], answer.text
    bogus = client.post(f"{API}/preview", params={"id": "0/plain.pt", "replace": "../x"},
                        content=png_bytes((1, 2, 3)), headers={"content-type": "image/png"})
    assert bogus.status_code == 400
    assert (tmp_path / "picture.png").read_bytes() == before and not (tmp_path / "plain.png").exists()
    with pytest.raises(KeyError):  # the library itself only ever replaces the picture an entry shows
        library.save_preview(library.get("plain"), png_bytes((1, 2, 3)), "plain.png")
    with pytest.raises(KeyError):
        library.save_preview(library.get("picture"), png_bytes((1, 2, 3)), "picture.png")
    assert json.loads(client.get(f"{API}/cards").text)["cards"]
