"""Hostile group files and cross-site group writes.

A ``*.tigroup.json`` may come from anyone (a shared folder, an archive): oversized, comma or bracket bombs, deep
nesting, a FIFO or a link under that name, names and keywords made to confuse a page or a prompt. Each one costs
only that group (listed with a one-line ``problem``, never inserted), never blocks a listing, never loses an
embedding or another group. The group routes refuse every write another site's page can send (same attacks as the
other writes, ``test_hostile_csrf.ATTACKS``) and change no file then.
"""

from __future__ import annotations

import json
import os

import pytest
from factories import vectors, write_a1111_pt
from hostile_kit import TALLY
from test_hostile_csrf import ATTACKS
from test_hostile_http import PAGE_HEADERS, P, Site

from sd_embeddings.library import Library
from sd_embeddings.library import group_store as store
from sd_embeddings.library.groups import LIMITS, Member

GOOD = '{"sd-embeddings group": 1, "members": [{"keyword": "good"}]}'
HOSTILE = {
    "huge": '{"sd-embeddings group": 1, "members": [{"keyword": "good"}], "pad": "' + "x" * LIMITS.size + '"}',
    "commas": '{"sd-embeddings group": 1, "members": [' + "0," * (LIMITS.values + 1) + "0]}",
    "nested": "[" * 150 + "]" * 150,
    "deep": '{"a":' * 3000 + "1" + "}" * 3000,
    "not utf-8": b'{"sd-embeddings group": 1, "members": [{"keyword": "\xff\xfe"}]}',
    "no marker": '{"members": [{"keyword": "good"}]}',
    "prompt injection": '{"sd-embeddings group": 1, "members": [{"keyword": "good, (nsfw:1.5)"}]}',
    "lora tag": '{"sd-embeddings group": 1, "members": [{"keyword": "<lora:evil:1>"}]}',
    "script keyword": '{"sd-embeddings group": 1, "members": [{"keyword": "<script>alert(1)</script>"}]}',
    "control keyword": '{"sd-embeddings group": 1, "members": [{"keyword": "good\\u001b[2J"}]}',
    "nan weight": '{"sd-embeddings group": 1, "members": [{"keyword": "good", "weight": NaN}]}',
    "huge int weight": '{"sd-embeddings group": 1, "members": [{"keyword": "good", "weight": 1' + "0" * 400 + "}]}",
    "list": "[]",
    "empty": "",
}


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "embeddings"
    write_a1111_pt(root / "good.pt", vectors(2))
    (root / "Fine.tigroup.json").write_text(GOOD, encoding="utf-8")
    library = Library([root], background_hashing=False)
    library.refresh()
    return library


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_group_file_costs_only_itself(library, kind):
    TALLY["inputs"] += 1
    data = HOSTILE[kind]
    path = os.path.join(library.folders[0], f"{kind}.tigroup.json")
    with open(path, "wb") as handle:
        handle.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    groups = {g.name: g for g in store.groups_of(library)}
    assert groups["Fine"].problem == "" and groups["Fine"].members == (Member("good"),)
    assert groups[kind].problem and "\n" not in groups[kind].problem and len(groups[kind].problem) <= 200
    assert groups[kind].members == ()
    assert library.get("good") is not None
    if kind in ("huge", "commas", "deep"):  # refused by counting, before json.loads builds anything
        assert " holds " in groups[kind].problem and "refused" in groups[kind].problem


@pytest.mark.parametrize("name", ["evil\x1b[31m", "<img src=x onerror=alert(1)>", "caf\udce9", "a\u202eb"])
def test_a_hostile_file_name_is_listed_as_a_problem(library, name):
    TALLY["inputs"] += 1
    path = os.path.join(library.folders[0], f"{name}.tigroup.json")
    with open(os.fsencode(path), "w", encoding="utf-8") as handle:
        handle.write(GOOD)
    bad = [g for g in store.groups_of(library) if g.name != "Fine"]
    assert len(bad) == 1 and bad[0].problem


def test_a_fifo_or_a_link_under_a_group_name_is_not_read(library, tmp_path):
    """A FIFO would block the listing for ever; a link could read any file the host can."""
    TALLY["inputs"] += 2
    secret = tmp_path / "secret.json"
    secret.write_text(GOOD, encoding="utf-8")
    os.mkfifo(os.path.join(library.folders[0], "fifo.tigroup.json"))
    os.symlink(secret, os.path.join(library.folders[0], "link.tigroup.json"))
    assert [g.name for g in store.groups_of(library)] == ["Fine"]


@pytest.fixture
def site(tmp_path) -> Site:
    site = Site(tmp_path)
    store.save_group(site.library, "Keep", "", "auto", (Member("good"),))
    site.before = site.snapshot()
    return site


@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("route", ["save", "delete"])
def test_cross_site_group_writes_are_refused(site, route, attack):
    [keep] = store.groups_of(site.library)
    url, body = {"save": (f"{P}/groups", {"name": "PWNED", "members": [{"keyword": "good"}]}),
                 "delete": (f"{P}/groups/delete", {"id": f"0/{keep.relpath}"})}[route]
    headers = {key: value for key, value in {**PAGE_HEADERS, **ATTACKS[attack]}.items() if value is not None}
    site.client.headers.clear()
    response = site.client.post(url, content=json.dumps(body).encode(), headers=headers)
    assert response.status_code == 403, (route, attack, response.text)
    assert site.changed() == set()
    accepted = site.client.post(url, content=json.dumps(body).encode(), headers=PAGE_HEADERS)
    assert accepted.status_code == 200  # the page's own request, for contrast
