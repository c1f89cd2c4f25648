"""Inside the WebUI the inspector's nearest tokens come from the loaded model's own token embeddings.

Faked (the WebUI cannot be installed here; the live check is ``tests/integration/test_webui_dialog.py``): the
WebUI's ``modules`` (``tests/webui/conftest.py``) and its model. The fake model's ``cond_stage_model`` gets a
``modules()`` that walks real ``torch.nn`` modules laid out as A1111 1.10 hijacks them: SD1
``wrapped.transformer.text_model.embeddings`` with ``token_embedding = EmbeddingsWithFixes(wrapped=Embedding(49408,
768))`` and ``position_embedding = Embedding(77, 768)``; SDXL's conditioner with CLIP-L (768) and OpenCLIP-G
(``model.token_embedding``, 1280) embedders; float16 weights, as the WebUI keeps them.
"""

from __future__ import annotations

import torch
from factories import vectors, write_a1111_pt
from test_api_auth import PAGE_WRITE, mounted  # noqa: F401  (the fixture: the extension on the fake WebUI)
from token_tables import crafted_table

from sd_embeddings.webui import entry
from sd_embeddings.webui.a1111 import A1111Host
from sd_embeddings.webui.vocabulary import WebUIVocabulary

P = "/sd-embeddings/v1"
CAT, DOG = vectors(1, seed=21)[0], vectors(1, seed=22)[0]


class EmbeddingsWithFixes(torch.nn.Module):
    """A1111's hijack wrapper: the original table is ``wrapped``."""

    def __init__(self, wrapped: torch.nn.Embedding) -> None:
        super().__init__()
        self.wrapped = wrapped


def embedding(table: torch.Tensor) -> torch.nn.Embedding:
    layer = torch.nn.Embedding(*table.shape, dtype=table.dtype)
    with torch.no_grad():
        layer.weight.copy_(table)
    return layer


def sd1_text_model(table: torch.Tensor) -> torch.nn.Module:
    embeddings = torch.nn.Module()
    embeddings.token_embedding = EmbeddingsWithFixes(embedding(table))
    embeddings.position_embedding = torch.nn.Embedding(77, 768, dtype=table.dtype)
    text_model = torch.nn.Module()
    text_model.embeddings = embeddings
    transformer = torch.nn.Module()
    transformer.text_model = text_model
    wrapped = torch.nn.Module()
    wrapped.transformer = transformer
    model = torch.nn.Module()
    model.wrapped = wrapped
    return model


def sdxl_conditioner(table_l: torch.Tensor, table_g: torch.Tensor) -> torch.nn.Module:
    open_clip = torch.nn.Module()
    open_clip.token_embedding = EmbeddingsWithFixes(embedding(table_g))
    second = torch.nn.Module()
    second.wrapped = torch.nn.Module()
    second.wrapped.model = open_clip
    conditioner = torch.nn.Module()
    conditioner.embedders = torch.nn.ModuleList([sd1_text_model(table_l), second])
    return conditioner


def with_tables(webui, tree: torch.nn.Module) -> object:
    model = webui.load_model(768)
    model.cond_stage_model.modules = tree.modules
    return model


def test_the_host_finds_every_token_table_by_width(webui) -> None:
    table = crafted_table({"cat": CAT}, dtype=torch.float16)
    sd1 = with_tables(webui, sd1_text_model(table))
    found = A1111Host().token_embeddings(sd1)
    assert list(found) == [768] and found[768].dtype == torch.float16 and found[768].shape == (49408, 768)
    xl = with_tables(webui, sdxl_conditioner(table, torch.zeros(49408, 1280, dtype=torch.float16)))
    assert sorted(A1111Host().token_embeddings(xl)) == [768, 1280]


def test_before_a_model_is_loaded_the_inspector_says_so(webui) -> None:
    vocabulary = WebUIVocabulary(A1111Host())
    assert vocabulary.state() == ("none", "no model is loaded yet")
    with_tables(webui, torch.nn.Module())  # a model without any CLIP token table
    assert vocabulary.state()[0] == "none" and "no CLIP token embeddings" in vocabulary.state()[1]


def test_nearest_tokens_through_the_mounted_routes(mounted, webui) -> None:  # noqa: F811
    write_a1111_pt(webui.folder / "petmix.pt", torch.stack([CAT, DOG]))
    client = mounted()
    assert client.get(f"{P}/inspect", params={"id": "0/petmix.pt"}).json()["nearest"]["state"] == "none"
    with_tables(webui, sd1_text_model(crafted_table({"cat": CAT, "dog": DOG}, dtype=torch.float16)))
    entry.database().load_textual_inversion_embeddings(force_reload=True)
    found = client.get(f"{P}/inspect", params={"id": "0/petmix.pt"}).json()
    assert found["nearest"] == {"state": "ready", "detail": "the WebUI's model"}
    answer = client.post(f"{P}/inspect/nearest", params={"id": "0/petmix.pt"},
                         headers={**PAGE_WRITE, "content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    rows = answer.json()["parts"][0]["vectors"]
    assert [row[0]["token"] for row in rows] == ["cat", "dog"] and rows[0][0]["cosine"] > 0.99


def test_the_nearest_route_needs_the_ui_login(mounted) -> None:  # noqa: F811
    client = mounted(gradio_auth={"ui": "secret"})
    for method, url in (("GET", f"{P}/inspect?id=0/one.pt"), ("POST", f"{P}/inspect/nearest?id=0/one.pt")):
        answer = client.request(method, url, headers={**PAGE_WRITE, "content-type": "application/json"})
        assert answer.status_code == 401, (url, answer.status_code)
