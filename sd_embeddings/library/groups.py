"""Groups: a named, saved set of embeddings with weights and a target prompt, one JSON file each.

A group lives in an embeddings folder as ``<name>.tigroup.json`` (``SUFFIX``): the WebUI's loader ignores every
extension but ``.pt``/``.bin``/``.safetensors`` and pictures, tag autocomplete lists what the database holds (or,
in its fallback, those extensions only), and no embedding is named ``x.tigroup``, so nothing else takes it for an
embedding or for an embedding's ``x.json``. The file::

    {"sd-embeddings group": 1, "description": "...", "target": "auto" | "positive" | "negative",
     "members": [{"keyword": "EasyNegative"}, {"keyword": "negative_hand-neg", "weight": 0.8,
                  "target": "group" | "positive" | "negative"}]}

The name is the file name less ``SUFFIX``. A member's ``target`` ``group`` (the default) follows the group's;
the group's ``auto`` lets each member go where its own card goes (negative embeddings to the negative prompt).
A member without ``weight`` is inserted with its card's preferred weight.

Group files may come from anyone: each is read within ``LIMITS`` (a FIFO or folder refused at once), every value
is type-checked, names and keywords must be plain text (``check_name``, ``check_keyword``); a file that fails is
listed with its ``problem`` and can be neither inserted nor edited, only deleted. Writes go through
``atomic.write_atomic``; ``save_group``/``delete_group`` raise ``GroupError`` (a one-line reason) for bad input.
"""

from __future__ import annotations

import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass

from ..errors import CorruptFileError
from ..formats import json_limits
from ..formats.decoding import open_regular

SUFFIX = ".tigroup.json"
MARKER = "sd-embeddings group"
TARGETS = ("auto", "positive", "negative")
MEMBER_TARGETS = ("group", "positive", "negative")
MAX_MEMBERS = 64
NAME_LIMIT = 80
KEYWORD_LIMIT = 200
DESCRIPTION_LIMIT = 2000
WEIGHT_LIMIT = 100.0
LIMITS = json_limits.JsonLimits(size=64 * 1024, values=1000, containers=200, strings=1000)
"""A group the tab writes is a few hundred bytes; 64 members with long names fit well inside these."""
_NOT_IN_NAMES = re.compile(r'[/\\:*?"<>|]')
_NOT_IN_KEYWORDS = re.compile(r"[,:<>|{}\n\r\t]")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


class GroupError(ValueError):
    """Bad input for a group (name, member, target, weight), or a name already taken: a one-line reason."""


class GroupExists(GroupError):
    """Another group has this name (names are compared ignoring case)."""


@dataclass(frozen=True)
class Member:
    keyword: str
    weight: float | None = None
    target: str = "group"


@dataclass
class Group:
    path: str
    root: str
    folder: str
    """Relative to ``root``, ``/``-separated, ``""`` at the top."""
    name: str
    description: str = ""
    target: str = "auto"
    members: tuple[Member, ...] = ()
    problem: str = ""
    stamp: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def filename(self) -> str:
        return os.path.basename(self.path)

    @property
    def relpath(self) -> str:
        return f"{self.folder}/{self.filename}" if self.folder else self.filename


def is_group_file(filename: str) -> bool:
    return filename.lower().endswith(SUFFIX) and len(filename) > len(SUFFIX)


def _plain(text: str) -> bool:
    """No control, format or unassigned characters (or lone surrogates): nothing that changes what one sees."""
    return not any(unicodedata.category(ch).startswith("C") for ch in text)


def check_name(name: object) -> str:
    """The group name, or ``GroupError`` saying why it cannot be a file name on every system."""
    if not isinstance(name, str) or not name.strip():
        raise GroupError("the group needs a name")
    if len(name) > NAME_LIMIT:
        raise GroupError(f"the group name is longer than {NAME_LIMIT} characters")
    if name != name.strip() or name.startswith(".") or name.endswith("."):
        raise GroupError("a group name cannot start or end with a space or a dot")
    if _NOT_IN_NAMES.search(name) or not _plain(name):
        raise GroupError('a group name cannot hold / \\ : * ? " < > | or control characters')
    if name.split(".")[0].lower() in _RESERVED:
        raise GroupError(f"{name!r} is a reserved file name on Windows")
    return name


def check_keyword(keyword: object) -> str:
    if not isinstance(keyword, str) or not keyword.strip() or keyword != keyword.strip():
        raise GroupError("a member needs a keyword without outer spaces")
    if len(keyword) > KEYWORD_LIMIT or _NOT_IN_KEYWORDS.search(keyword) or not _plain(keyword):
        raise GroupError(f"member keyword {keyword[:40]!r} is not a keyword (too long, or holds , : < > | {{ }})")
    return keyword


def check_weight(weight: object) -> float | None:
    """None for no weight (also 1, which inserts the plain keyword); else a finite number within the limit."""
    if weight is None or weight == "":
        return None
    if isinstance(weight, bool) or not isinstance(weight, (int, float, str)):
        raise GroupError("a weight must be a number")
    try:
        number = float(weight)
    except (ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number) or abs(number) > WEIGHT_LIMIT:
        raise GroupError(f"a weight must be a number between -{WEIGHT_LIMIT:g} and {WEIGHT_LIMIT:g}")
    return None if number == 1.0 else round(number, 3)


def check_member(item: object) -> Member:
    if not isinstance(item, dict):
        raise GroupError("a member must be an object with a keyword")
    target = item.get("target", "group")
    if target not in MEMBER_TARGETS:
        raise GroupError("a member's target must be group, positive or negative")
    return Member(check_keyword(item.get("keyword")), check_weight(item.get("weight")), target)


def check_content(data: object) -> tuple[str, str, tuple[Member, ...]]:
    """``(description, target, members)`` of a group document (a file, or a request body)."""
    if not isinstance(data, dict):
        raise GroupError("a group must be a JSON object")
    description, target, members = data.get("description", ""), data.get("target", "auto"), data.get("members")
    if not isinstance(description, str) or not _plain(description.replace("\n", " ")):
        raise GroupError("the description must be plain text")
    if target not in TARGETS:
        raise GroupError("the group's target must be auto, positive or negative")
    if not isinstance(members, list) or not members:
        raise GroupError("a group needs at least one member")
    if len(members) > MAX_MEMBERS:
        raise GroupError(f"a group holds at most {MAX_MEMBERS} members")
    checked = tuple(check_member(item) for item in members)
    if len({member.keyword.casefold() for member in checked}) != len(checked):
        raise GroupError("a keyword is listed twice")
    return description[:DESCRIPTION_LIMIT], target, checked


def read_group(path: str, root: str, folder: str, stamp: tuple[int, int, int, int] = (0, 0, 0, 0)) -> Group:
    """The group in ``path``; whatever is wrong with the file becomes its ``problem`` (never raised)."""
    group = Group(path, root, folder, os.path.basename(path)[:-len(SUFFIX)], stamp=stamp)
    try:
        check_name(group.name)
        with open_regular(path) as handle:
            raw = handle.read(LIMITS.size + 1)
        json_limits.check(raw, LIMITS, path, "the group file")
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict) or data.get(MARKER) != 1:
            raise GroupError(f'not a group file (no "{MARKER}": 1)')
        group.description, group.target, group.members = check_content(data)
    except CorruptFileError as e:
        group.problem = e.reason
    except json.JSONDecodeError as e:
        group.problem = f"not valid JSON ({e.msg}, line {e.lineno} column {e.colno})"
    except (GroupError, OSError, ValueError, RecursionError) as e:  # UnicodeError is a ValueError
        group.problem = str(e)[:200] or type(e).__name__
    return group


def document(description: str, target: str, members: tuple[Member, ...]) -> bytes:
    """The file's bytes, written as the WebUI writes its JSON (indent 4, non-ASCII kept)."""
    items = [{"keyword": m.keyword, **({"weight": m.weight} if m.weight is not None else {}),
              **({"target": m.target} if m.target != "group" else {})} for m in members]
    data = {MARKER: 1, "description": description, "target": target, "members": items}
    return json.dumps(data, indent=4, ensure_ascii=False, allow_nan=False).encode("utf-8")
