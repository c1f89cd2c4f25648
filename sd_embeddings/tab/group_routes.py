"""HTTP routes for groups, added to the tab's router by ``routes.make_router`` (same prefix, auth and guards).

- ``GET  /groups`` -> ``{"groups": [GROUP, ...]}`` (``groups.groups_payload``).
- ``POST /groups`` body ``{"id"?, "name", "description", "target", "members": [{"keyword", "weight"?,
  "target"?}]}`` -> writes ``<name>.tigroup.json`` (a new group into the first embeddings folder; with ``id``,
  that group, renamed if the name changed) through the library's atomic writer; returns ``{"group", "groups"}``.
  A bad name, member, weight or target is 400 with the reason, a name another group has 409, an unknown ``id``
  404, a group whose file cannot be read 400 (it can only be deleted).
- ``POST /groups/delete`` body ``{"id"}`` -> removes that group's file; returns ``{"groups"}``.

Both writes pass ``guard.check_write`` first (JSON ``Content-Type``, same origin, page token), read the body within
``routes.BODY_LIMIT`` and never touch a path the request names: only files of listed groups, or a new file whose
name was checked by ``groups.check_name`` inside a library folder.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ..library import group_store
from ..library.groups import GroupError, GroupExists, check_content, check_name
from . import guard, request_bodies, routes
from .groups import find, group_model, groups_payload


def _known(tab: routes._Tab, group_id: object):  # -> Group
    if not isinstance(group_id, str):
        raise HTTPException(status_code=400, detail="id must be text")
    group = find(tab.get_library(), group_id)
    if group is None:
        raise HTTPException(status_code=404, detail="unknown group")
    return group


def _save(tab: routes._Tab, body: dict) -> dict:
    library = tab.get_library()
    replacing = _known(tab, body["id"]) if body.get("id") else None
    try:
        description, target, members = check_content(body)
        saved = group_store.save_group(library, check_name(body.get("name")), description, target, members,
                                       replacing)
    except GroupExists as e:
        raise HTTPException(status_code=409, detail=str(e)) from e
    except GroupError as e:
        raise HTTPException(status_code=400, detail=str(e)) from e
    return {"group": group_model(library, saved, group_store.MemberLookup(library), tab.auto_negative()),
            "groups": groups_payload(library, tab.auto_negative())}


def _delete(tab: routes._Tab, body: dict) -> dict:
    library = tab.get_library()
    try:
        group_store.delete_group(library, _known(tab, body.get("id")))
    except GroupError as e:
        raise HTTPException(status_code=404, detail=str(e)) from e
    return {"groups": groups_payload(library, tab.auto_negative())}


async def _object_body(request: Request) -> dict:
    guard.check_write(request)
    body = await request_bodies.json_body(request)
    if not isinstance(body, dict):
        raise HTTPException(status_code=400, detail="body must be a JSON object")
    return body


def add_routes(router: APIRouter, tab: routes._Tab) -> None:
    @router.get("/groups")
    def list_groups() -> dict:
        return {"groups": groups_payload(tab.get_library(), tab.auto_negative())}

    @router.post("/groups")
    async def save(request: Request) -> dict:
        body = await _object_body(request)
        return await run_in_threadpool(_save, tab, body)

    @router.post("/groups/delete")
    async def delete(request: Request) -> dict:
        body = await _object_body(request)
        return await run_in_threadpool(_delete, tab, body)
