"""Groups on disk (``library/groups.py``, ``group_store.py``) and over HTTP (``tab/group_routes.py``): real files in
tmp_path, the real routes behind the page's write headers."""

from __future__ import annotations

import json
import os

import pytest
from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sd_embeddings.formats.decoding import format_of
from sd_embeddings.library import Library
from sd_embeddings.library import group_store as store
from sd_embeddings.library.groups import GroupError, GroupExists, Member, check_content, check_name
from sd_embeddings.records import Family
from sd_embeddings.tab import guard
from sd_embeddings.tab import routes as http_routes

P = http_routes.ROUTE_PREFIX
HEADERS = {"content-type": "application/json", "origin": "http://testserver", guard.TOKEN_HEADER: guard.page_token()}
NEGATIVES = (Member("EasyNegative"), Member("bad-hands-5"), Member("negative_hand-neg", 0.8))


@pytest.fixture()
def library(tmp_path):
    root = tmp_path / "embeddings"
    write_a1111_pt(root / "EasyNegative.pt", vectors(2))
    write_safetensors(root / "neg" / "bad-hands-5.safetensors", {"emb_params": vectors(3, seed=1)})
    write_safetensors(root / "negative_hand-neg.safetensors", {"emb_params": vectors(1, seed=2)})
    write_safetensors(root / "xl-detail.safetensors", sdxl_vectors(1))
    (root / "broken.pt").write_bytes(b"PK\x03\x04 cut short")
    library = Library([root], family=Family.SD1, background_hashing=False)
    library.refresh()
    return library


def test_a_group_is_one_json_file_that_reads_back(library):
    saved = store.save_group(library, "My negatives", "the usual", "negative", NEGATIVES)
    path = os.path.join(library.folders[0], "My negatives.tigroup.json")
    assert saved.path == path and saved.problem == ""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    assert data == {"sd-embeddings group": 1, "description": "the usual", "target": "negative",
                    "members": [{"keyword": "EasyNegative"}, {"keyword": "bad-hands-5"},
                                {"keyword": "negative_hand-neg", "weight": 0.8}]}
    [listed] = store.groups_of(library)
    assert (listed.name, listed.members, listed.target) == ("My negatives", NEGATIVES, "negative")


def test_the_webui_and_the_scan_take_a_group_file_for_no_embedding(library):
    """The WebUI's loader reads only .pt/.bin/.safetensors and pictures; ours lists no entry and no problem."""
    store.save_group(library, "Negatives", "", "auto", NEGATIVES)
    assert format_of("Negatives.tigroup.json") is None
    before = [e.relpath for e in library.entries]
    library.refresh(force=True)
    assert [e.relpath for e in library.entries] == before
    assert all(e.sidecars.metadata_file is None for e in library.entries)


def test_rename_edit_and_delete(library):
    first = store.save_group(library, "Negs", "", "auto", NEGATIVES)
    renamed = store.save_group(library, "Negatives", "edited", "auto", NEGATIVES[:2], replacing=first)
    assert not os.path.exists(first.path) and os.path.exists(renamed.path)
    assert [(g.name, g.description, len(g.members)) for g in store.groups_of(library)] == [("Negatives", "edited", 2)]
    store.delete_group(library, renamed)
    assert store.groups_of(library) == [] and not os.path.exists(renamed.path)


def test_a_taken_name_is_refused_ignoring_case(library):
    store.save_group(library, "Negatives", "", "auto", NEGATIVES)
    with pytest.raises(GroupExists, match="exists already"):
        store.save_group(library, "NEGATIVES", "", "auto", NEGATIVES)


def test_groups_in_sub_folders_and_files_changed_by_hand_are_seen(library):
    sub = os.path.join(library.folders[0], "neg")
    group_file = os.path.join(sub, "Hands.tigroup.json")
    with open(group_file, "w", encoding="utf-8") as handle:
        handle.write('{"sd-embeddings group": 1, "members": [{"keyword": "bad-hands-5"}]}')
    [found] = store.groups_of(library)
    assert (found.folder, found.relpath, found.target) == ("neg", "neg/Hands.tigroup.json", "auto")
    with open(group_file, "w", encoding="utf-8") as handle:  # in place: the folder's listing does not change
        handle.write('{"sd-embeddings group": 1, "members": [{"keyword": "EasyNegative", "weight": 1.3}]}')
    assert store.groups_of(library)[0].members == (Member("EasyNegative", 1.3),)


@pytest.mark.parametrize("name", ["", "  ", " lead", "trail ", ".hidden", "end.", "a/b", "a\\b", "a:b", "a<b>",
                                  'q"uote', "x" * 81, "tab\tname", "esc\x1b[31m", "bidi\u202eevil", "CON", "nul.txt"])
def test_bad_names_are_refused(name):
    with pytest.raises(GroupError):
        check_name(name)


@pytest.mark.parametrize("body, reason", [
    ({"members": []}, "at least one member"),
    ({"members": [{"keyword": "a"}] * 2}, "listed twice"),
    ({"members": [{"keyword": f"k{i}"} for i in range(65)]}, "at most 64"),
    ({"members": [{"keyword": "a, (masterpiece:99)"}]}, "not a keyword"),
    ({"members": [{"keyword": "a\nb"}]}, "not a keyword"),
    ({"members": [{"keyword": "<lora:x:1>"}]}, "not a keyword"),
    ({"members": [{"keyword": "a", "weight": "nan"}]}, "weight"),
    ({"members": [{"keyword": "a", "weight": 1e400}]}, "weight"),
    ({"members": [{"keyword": "a", "weight": True}]}, "weight"),
    ({"members": [{"keyword": "a", "weight": 101}]}, "weight"),
    ({"members": [{"keyword": "a", "target": "both"}]}, "target"),
    ({"members": [{"keyword": "a"}], "target": "sideways"}, "target"),
    ({"members": [{"keyword": "a"}], "description": ["x"]}, "description"),
    ({"members": "EasyNegative"}, "at least one member"),
])
def test_bad_content_is_refused_with_a_reason(body, reason):
    with pytest.raises(GroupError, match=reason):
        check_content(body)


def test_member_states_say_what_is_usable(library):
    members = (Member("easynegative"), Member("xl-detail"), Member("broken"), Member("nothing"))
    lookup = store.MemberLookup(library)
    states = [lookup.state(m) for m in members]
    assert [s.status for s in states] == ["loaded", "incompatible", "failed", "missing"]
    assert "model is SD1.5" in states[1].reason and states[2].reason.startswith("corrupt")


# -- over HTTP ------------------------------------------------------------------------------------------------

@pytest.fixture()
def client(library):
    app = FastAPI()
    app.include_router(http_routes.make_router(lambda: library))
    return TestClient(app)


def post(client, path, body):
    return client.post(P + path, content=json.dumps(body).encode(), headers=HEADERS)


def test_create_list_edit_and_delete_over_http(client, library):
    body = {"name": "Negatives", "target": "auto", "members": [
        {"keyword": "EasyNegative"}, {"keyword": "bad-hands-5", "weight": "0.9"}, {"keyword": "xl-detail"},
        {"keyword": "gone", "target": "positive"}]}
    made = post(client, "/groups", body)
    assert made.status_code == 200, made.text
    group = made.json()["group"]
    assert [(m["keyword"], m["weight"], m["box"], m["status"]) for m in group["members"]] == [
        ("EasyNegative", None, "negative", "loaded"), ("bad-hands-5", 0.9, "negative", "loaded"),
        ("xl-detail", None, "focused", "incompatible"), ("gone", None, "positive", "missing")]
    assert client.get(P + "/cards").json()["groups"] == [group]
    assert post(client, "/groups", body).status_code == 409
    edited = post(client, "/groups", {**body, "id": group["id"], "name": "Negs", "target": "negative"})
    assert edited.status_code == 200 and [g["name"] for g in edited.json()["groups"]] == ["Negs"]
    assert edited.json()["group"]["members"][2]["box"] == "negative"
    gone = post(client, "/groups/delete", {"id": edited.json()["group"]["id"]})
    assert gone.status_code == 200 and gone.json()["groups"] == [] and store.groups_of(library) == []


@pytest.mark.parametrize("body, status", [
    ({"name": "a/b", "members": [{"keyword": "x"}]}, 400),
    ({"name": "ok", "members": [{"keyword": "x", "weight": "inf"}]}, 400),
    ({"name": "ok", "id": "0/none.tigroup.json", "members": [{"keyword": "x"}]}, 404),
    ({"name": "ok", "id": 5, "members": [{"keyword": "x"}]}, 400),
    (["not", "an", "object"], 400),
])
def test_bad_requests_write_nothing(client, library, body, status):
    before = sorted(os.listdir(library.folders[0]))
    response = post(client, "/groups", body)
    assert response.status_code == status and "\n" not in response.json()["detail"]
    assert sorted(os.listdir(library.folders[0])) == before


def test_a_broken_group_can_only_be_deleted(client, library):
    path = os.path.join(library.folders[0], "Broken.tigroup.json")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("{not json")
    [group] = client.get(P + "/groups").json()["groups"]
    assert group["problem"].startswith("not valid JSON")
    refused = post(client, "/groups", {"id": group["id"], "name": "Broken", "members": [{"keyword": "x"}]})
    assert refused.status_code == 400 and "delete it instead" in refused.json()["detail"]
    assert post(client, "/groups/delete", {"id": group["id"]}).status_code == 200 and not os.path.exists(path)
