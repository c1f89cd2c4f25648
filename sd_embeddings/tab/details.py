"""What the metadata dialog shows beside the user's own fields: where the preview comes from, and the Civitai sidecars.

``preview_info(entry)`` -> ``{"shown", "kind", "upload_name", "shadowed_by"}``: the picture the card shows and its
kind (``own``: an image embedding is its own picture; ``upload``: ``x.preview.png``; ``civitai``: Civitai Browser+'s
first saved image ``x_0.jpg``; ``file``: another picture beside it), the name an upload is written to, and
``shadowed_by``: a plain ``x.png`` that takes precedence over ``x.preview.png`` (the dialog then offers to replace
that one instead, ``POST /preview?replace=shown``).

``civitai_info(library, entry)`` -> ``CivitaiSummary.as_dict()`` plus ``mismatch``: a sentence when the base model
the sidecar names belongs to another family than the vectors (``Civitai lists it for SD 1.5; its vectors are SDXL``).
Every value is plain text; the script escapes it.
"""

from __future__ import annotations

import os
from typing import Any

from ..library import Library
from ..library.sidecars import civitai_first_image, preview_upload_path
from ..records import Entry, Family
from .names import shown
from .preview_upload import shadowing_preview


def preview_kind(entry: Entry) -> str:
    name = entry.sidecars.preview or ""
    stem = os.path.splitext(entry.filename)[0].lower()
    if not name:
        return ""
    if name == entry.filename:
        return "own"
    if name.lower() == os.path.basename(preview_upload_path(entry)).lower():
        return "upload"
    if name == civitai_first_image(stem, {name.lower(): name}):
        return "civitai"
    return "file"


def preview_info(entry: Entry) -> dict[str, str]:
    return {"shown": shown(entry.sidecars.preview or ""), "kind": preview_kind(entry),
            "upload_name": shown(os.path.basename(preview_upload_path(entry))),
            "shadowed_by": shown(shadowing_preview(entry) or "")}


def civitai_info(library: Library, entry: Entry) -> dict[str, Any]:
    if not (entry.sidecars.civitai_file or entry.sidecars.metadata_file):
        return {}
    found = library.civitai_summary(entry)
    info = found.as_dict()
    own = entry.family
    info["mismatch"] = (f"Civitai lists it for {found.base_model}; its vectors are {own.long_label}"
                        if found.family and own is not Family.UNKNOWN and found.family is not own else "")
    return info if (found.sources or found.problems) else {}
