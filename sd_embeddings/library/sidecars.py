"""Files that sit beside an embedding: preview picture, description text, user metadata (``x.json``)."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from ..errors import CorruptFileError
from ..formats import json_limits
from ..formats.decoding import open_regular
from ..formats.text import clean_json
from ..records import Entry, Sidecars
from . import civitai
from .atomic import write_atomic

logger = logging.getLogger(__name__)

PREVIEW_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "gif")
"""Precedence is this fixed order (the WebUI's depends on set order); within one extension the bare name wins."""


def is_preview_name(filename: str) -> bool:
    """``foo.preview.png``: a preview picture, never an embedding."""
    stem, ext = os.path.splitext(filename)
    return ext[1:].lower() in PREVIEW_EXTENSIONS + ("avif", "jxl") and stem.lower().endswith(".preview")


def find_sidecars(stem: str, names_lower: dict[str, str], own_image: str | None = None) -> Sidecars:
    """Sidecars of ``stem`` among a directory listing (``lower-case name -> real name``)."""
    found = Sidecars(preview=own_image)
    low = stem.lower()
    if found.preview is None:
        for ext in PREVIEW_EXTENSIONS:
            for candidate in (f"{low}.{ext}", f"{low}.preview.{ext}"):
                if candidate in names_lower:
                    found.preview = names_lower[candidate]
                    break
            if found.preview:
                break
    for candidate in (f"{low}.txt", f"{low}.description.txt"):
        if candidate in names_lower:
            found.description_file = names_lower[candidate]
            break
    if f"{low}.json" in names_lower:
        found.metadata_file = names_lower[f"{low}.json"]
    found.civitai_file = next((names_lower[low + s] for s in civitai.INFO_SUFFIXES if low + s in names_lower), None)
    if found.preview is None and (found.civitai_file or found.metadata_file):
        found.preview = civitai_first_image(low, names_lower)
    return found


def civitai_first_image(stem_lower: str, names_lower: dict[str, str]) -> str | None:
    """Civitai Browser+'s "save images" writes the version's pictures as ``x_0.jpg``, ``x_1.jpg`` ...: the first one
    is the preview of ``x`` when it has no other (only a local file; nothing is ever fetched)."""
    for ext in PREVIEW_EXTENSIONS:
        for candidate in (f"{stem_lower}_0.{ext}", f"{stem_lower}_0.preview.{ext}"):
            if candidate in names_lower:
                return names_lower[candidate]
    return None


def is_civitai_image(name: str, model_stems: set[str], names_lower: dict[str, str]) -> bool:
    """``x_0.jpg`` beside a model file ``x`` that has a Civitai or user sidecar: a picture saved with it."""
    stem = name.rsplit(".", 1)[0].lower()
    owner = stem[:-2] if stem.endswith("_0") else ""
    return bool(owner) and owner in model_stems and any(
        owner + suffix in names_lower for suffix in (*civitai.INFO_SUFFIXES, ".json"))


def read_text(path: str, limit: int = 64 * 1024) -> str:
    try:
        with open_regular(path) as handle:  # a FIFO named x.txt would block the page for ever
            return handle.read(limit).decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


USER_METADATA_LIMITS = json_limits.JsonLimits(size=1024 * 1024, values=50_000, containers=10_000, strings=100_000)
"""A stranger's ``x.json`` is parsed within these counts (the WebUI writes a few hundred bytes)."""


def read_user_metadata(path: str) -> dict[str, Any]:
    """The WebUI's user metadata JSON (``{"description": ..., "notes": ...}`` plus our keys); {} if unusable.

    The file may come from anyone: it is read within ``USER_METADATA_LIMITS`` (a FIFO or folder is refused at
    once), and its values are cleaned (``clean_json``) so the page, the cards and a later write never fail on it.
    Anything wrong costs only this sidecar, with one warning line saying why."""
    try:
        with open_regular(path) as handle:
            raw = handle.read(USER_METADATA_LIMITS.size + 1)
        json_limits.check(raw, USER_METADATA_LIMITS, path, "the metadata file")
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except FileNotFoundError:
        return {}
    except CorruptFileError as e:
        logger.warning("Ignoring metadata file %s: %s", path, e.reason)
        return {}
    except (OSError, ValueError, RecursionError, MemoryError) as e:  # UnicodeError is a ValueError
        logger.warning("Ignoring unreadable metadata file %s (%s: %s)", path, type(e).__name__, str(e)[:100])
        return {}
    data = clean_json(data)
    return data if isinstance(data, dict) else {}


def write_user_metadata(path: str, data: dict[str, Any]) -> None:
    """Write as the WebUI does (indent 4, UTF-8, non-ASCII kept), atomically so a crash never leaves half a file.

    Raises ``WriteError`` (read-only folder, disk full, name too long) and ``ValueError`` for values JSON cannot
    hold (a lone surrogate, a float JSON has no spelling for); nothing is written then."""
    text = json.dumps(data, indent=4, ensure_ascii=False, allow_nan=False)
    write_atomic(path, text.encode("utf-8"))


def sidecar_path(entry: Entry, name: str | None) -> str | None:
    """A sidecar file beside the entry; None if it is a link leading anywhere else (never read through)."""
    if not name:
        return None
    path = os.path.join(os.path.dirname(entry.path), name)
    if os.path.dirname(os.path.realpath(path)) != os.path.dirname(os.path.realpath(entry.path)):
        logger.warning("Ignoring %s: it links outside the embedding's folder", path)
        return None
    return path


def user_metadata(entry: Entry) -> dict[str, Any]:
    path = sidecar_path(entry, entry.sidecars.metadata_file)
    return read_user_metadata(path) if path else {}


def description(entry: Entry) -> str:
    """``x.json`` "description" if set, else ``x.txt`` / ``x.description.txt`` (as the WebUI does), else the
    Civitai sidecar's description (as plain text)."""
    metadata = user_metadata(entry)
    text = metadata.get("description")
    if isinstance(text, str) and text:
        return text
    path = sidecar_path(entry, entry.sidecars.description_file)
    text = read_text(path) if path else ""
    return text or (civitai_summary(entry, metadata).description if entry.sidecars.civitai_file else "")


def civitai_summary(entry: Entry, metadata: dict | None = None) -> civitai.CivitaiSummary:
    """What the entry's Civitai sidecar and its ``x.json`` (``metadata`` when already read) say about it."""
    if metadata is None:
        metadata = user_metadata(entry)
    path = sidecar_path(entry, entry.sidecars.civitai_file)
    return civitai.summary(entry, path, metadata, entry.sidecars.metadata_file or "")


def preview_upload_path(entry: Entry) -> str:
    """Where a replaced preview goes: ``x.preview.png`` beside the file."""
    return os.path.splitext(entry.path)[0] + ".preview.png"


def metadata_path(entry: Entry) -> str:
    """Where ``x.json`` lives (or would): beside the file, named after its stem."""
    return os.path.splitext(entry.path)[0] + ".json"
