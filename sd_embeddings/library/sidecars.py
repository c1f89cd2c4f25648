"""Files that sit beside an embedding: preview picture, description text, user metadata (``x.json``)."""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import CorruptFileError
from ..formats import json_limits
from ..formats.logs import get_logger
from ..formats.text import clean_json
from ..records import NO_SIDECARS, Entry, Sidecars
from . import civitai
from .atomic import write_atomic
from .containment import Root

logger = get_logger(__name__)

PREVIEW_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "gif")
"""Precedence is this fixed order (the WebUI's depends on set order); within one extension the bare name wins."""


def is_preview_name(filename: str) -> bool:
    """``foo.preview.png``: a preview picture, never an embedding."""
    stem, ext = os.path.splitext(filename)
    return ext[1:].lower() in PREVIEW_EXTENSIONS + ("avif", "jxl") and stem.lower().endswith(".preview")


def find_sidecars(stem: str, names_lower: dict[str, str], own_image: str | None = None) -> Sidecars:
    """Sidecars of ``stem`` among a directory listing (``lower-case name -> real name``); a file with none gets
    the one shared ``NO_SIDECARS`` (most of 10,000 files have none: one object, not 10,000)."""
    preview = own_image
    low = stem.lower()
    if preview is None:
        preview = next((names_lower[candidate] for ext in PREVIEW_EXTENSIONS
                        for candidate in (f"{low}.{ext}", f"{low}.preview.{ext}") if candidate in names_lower), None)
    description = next((names_lower[candidate] for candidate in (f"{low}.txt", f"{low}.description.txt")
                        if candidate in names_lower), None)
    metadata = names_lower.get(f"{low}.json")
    civitai_file = next((names_lower[low + s] for s in civitai.INFO_SUFFIXES if low + s in names_lower), None)
    if preview is None and (civitai_file or metadata):
        preview = civitai_first_image(low, names_lower)
    if preview is description is metadata is civitai_file is None:
        return NO_SIDECARS
    return Sidecars(preview, description, metadata, civitai_file)


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


def read_text(path: str, limit: int = 64 * 1024, root: Root | None = None) -> str:
    """A description text file (``root``: the embeddings folder it must stay inside; see ``read_bytes``)."""
    raw = read_bytes(path, limit, root)
    return raw[:limit].decode("utf-8", errors="replace").strip() if raw else ""


def read_bytes(path: str, limit: int, root: Root | None = None) -> bytes | None:
    """Up to ``limit + 1`` bytes of a sidecar, opened once as a plain file inside ``root`` (default: the folder
    the file sits in); None when it is missing, not a plain file (a FIFO named x.txt would block the page for
    ever), leads outside the embeddings folder or cannot be read (with one log line saying why)."""
    try:
        return (root or Root.of(os.path.dirname(path))).read(path, limit)
    except FileNotFoundError:
        return None
    except OSError as e:
        logger.warning("Ignoring %s: %s", path, getattr(e, "reason", None) or e.strerror or e)
        return None


USER_METADATA_LIMITS = json_limits.JsonLimits(size=1024 * 1024, values=50_000, containers=10_000, strings=100_000)
"""A stranger's ``x.json`` is parsed within these counts (the WebUI writes a few hundred bytes)."""


def read_user_metadata(path: str, root: Root | None = None) -> dict[str, Any]:
    """The WebUI's user metadata JSON (``{"description": ..., "notes": ...}`` plus our keys); {} if unusable.

    The file may come from anyone: it is read within ``USER_METADATA_LIMITS`` (a FIFO or folder is refused at
    once), and its values are cleaned (``clean_json``) so the page, the cards and a later write never fail on it.
    Anything wrong costs only this sidecar, with one warning line saying why."""
    raw = read_bytes(path, USER_METADATA_LIMITS.size, root)
    if raw is None:
        return {}
    try:
        json_limits.check(raw, USER_METADATA_LIMITS, path, "the metadata file")
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except CorruptFileError as e:
        logger.warning("Ignoring metadata file %s: %s", path, e.reason)
        return {}
    except (OSError, ValueError, RecursionError, MemoryError) as e:  # UnicodeError is a ValueError
        logger.warning("Ignoring unreadable metadata file %s (%s: %s)", path, type(e).__name__, str(e)[:100])
        return {}
    data = clean_json(data)
    return data if isinstance(data, dict) else {}


def write_user_metadata(path: str, data: dict[str, Any], within: Root | None = None) -> None:
    """Write as the WebUI does (indent 4, UTF-8, non-ASCII kept), atomically so a crash never leaves half a file.

    Raises ``WriteError`` (read-only folder, disk full, name too long) and ``ValueError`` for values JSON cannot
    hold (a lone surrogate, a float JSON has no spelling for); nothing is written then. ``within``: the
    embeddings folder it must land in (a folder linked outside it: ``WriteError`` of kind ``outside``)."""
    text = json.dumps(data, indent=4, ensure_ascii=False, allow_nan=False)
    write_atomic(path, text.encode("utf-8"), within)


def sidecar_path(entry: Entry, name: str | None) -> str | None:
    """A sidecar file beside the entry; None if it is a link leading outside the entry's embeddings folder
    (never read through). Reading it still goes through ``Root.open``, which checks the file it opened."""
    if not name:
        return None
    path = os.path.join(os.path.dirname(entry.path), name)
    if os.path.islink(path):
        reason = Root.known(entry.root).refusal(path)
        if reason:
            logger.warning("Ignoring %s: %s", path, reason)
            return None
    return path


def user_metadata(entry: Entry) -> dict[str, Any]:
    path = sidecar_path(entry, entry.sidecars.metadata_file)
    return read_user_metadata(path, Root.known(entry.root)) if path else {}


def text_description(entry: Entry) -> str:
    """``x.txt`` / ``x.description.txt`` beside the entry, read inside its embeddings folder ("" if none)."""
    path = sidecar_path(entry, entry.sidecars.description_file)
    return read_text(path, root=Root.known(entry.root)) if path else ""


def description(entry: Entry, metadata: dict | None = None, summary: civitai.CivitaiSummary | None = None) -> str:
    """``x.json`` "description" if set, else ``x.txt`` / ``x.description.txt`` (as the WebUI does), else the
    Civitai sidecar's description (as plain text). ``metadata``/``summary``: already read (a card reads each once)."""
    if metadata is None:
        metadata = user_metadata(entry)
    text = metadata.get("description")
    if isinstance(text, str) and text:
        return text
    found = text_description(entry)
    if found or not entry.sidecars.civitai_file:
        return found
    return (summary if summary is not None else civitai_summary(entry, metadata)).description


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
