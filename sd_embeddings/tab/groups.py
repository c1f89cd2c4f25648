"""Groups as the tab shows them: one JSON object per group, carried in the cards document under ``groups``.

``groups_payload(library, auto_negative)`` -> ``[GROUP, ...]`` sorted by name::

    GROUP = {"id": "<root index>/<relative path>", "name", "relpath", "folder", "description",
             "target": "auto" | "positive" | "negative", "problem": "" | why the file cannot be used,
             "hidden": bool (a "." file or folder), "members": [MEMBER, ...]}
    MEMBER = {"keyword", "weight": number | null (null: the plain keyword), "target": "group" | "positive" |
              "negative" (as stored), "box": "positive" | "negative" | "focused" (where a click puts it),
              "status": "loaded" | "incompatible" | "failed" | "missing", "reason", "family": "SD1" | ... | ""}

A member's box: its own target, else the group's, else (``auto``) its card's (``cards.resolve_target``: the user's
choice or the negative-name rule). Its weight: its own, else its card's preferred weight. Every text is ``shown``
(file names that are not UTF-8) and escaped by the script that draws it.
"""

from __future__ import annotations

from typing import Any

from ..library import Library
from ..library.group_store import MemberLookup, MemberState, groups_of
from ..library.groups import Group
from . import cards
from .names import shown


def group_id(library: Library, group: Group) -> str:
    root = library.folders.index(group.root) if group.root in library.folders else 0
    return shown(f"{root}/{group.relpath}")


def find(library: Library, group_id_text: str) -> Group | None:
    return next((g for g in groups_of(library) if group_id(library, g) == group_id_text), None)


def _box_and_weight(library: Library, group: Group, state: MemberState, auto_negative: bool) -> tuple[str, Any]:
    member, entry = state.member, state.entry
    metadata = library.user_metadata(entry) if entry is not None and entry.sidecars.metadata_file else {}
    weight = member.weight if member.weight is not None else (cards.prompt_weight(metadata) if entry else None)
    for target in (member.target, group.target):
        if target in ("positive", "negative"):
            return target, weight
    keyword, folder = (entry.keyword, entry.folder) if entry is not None else (member.keyword, "")
    return cards.resolve_target(keyword, folder, metadata, auto_negative)[0], weight


def member_model(library: Library, group: Group, state: MemberState, auto_negative: bool) -> dict[str, Any]:
    box, weight = _box_and_weight(library, group, state, auto_negative)
    return {"keyword": shown(state.member.keyword), "weight": weight, "target": state.member.target, "box": box,
            "status": state.status, "reason": shown(state.reason),
            "family": state.entry.family.label if state.entry is not None and state.entry.header else ""}


def group_model(library: Library, group: Group, lookup: MemberLookup, auto_negative: bool = True) -> dict[str, Any]:
    members = [member_model(library, group, lookup.state(m), auto_negative) for m in group.members]
    return {"id": group_id(library, group), "name": shown(group.name), "relpath": shown(group.relpath),
            "folder": shown(group.folder), "description": shown(group.description), "target": group.target,
            "problem": shown(group.problem), "hidden": cards.is_hidden(group.relpath), "members": members}


def groups_payload(library: Library, auto_negative: bool = True) -> list[dict[str, Any]]:
    found = groups_of(library)
    lookup = MemberLookup(library) if found else None  # a pass over every entry: only when there are groups
    return [group_model(library, group, lookup, auto_negative) for group in found]
