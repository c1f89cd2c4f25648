"""The model family the database lists against: the loaded model's (its vector width), or before one is loaded,
the selected checkpoint's (its header), so the WebUI's listing is family-correct from the start."""

from __future__ import annotations

from typing import Any

from ..formats.checkpoint_header import checkpoint_family
from ..formats.logs import get_logger
from ..records import Family

logger = get_logger(__name__)

SHAPE_FAMILIES = {768: Family.SD1, 1024: Family.SD2, 2048: Family.SDXL}


def shape_of(family: Family | None) -> int:
    """The embedding width of ``family``; -1 (the WebUI's "no model") when unknown."""
    return next((width for width, known in SHAPE_FAMILIES.items() if known is family), -1)


def selected_family(host: Any) -> Family | None:
    """The family of the checkpoint ``host`` will load (``Host.selected_checkpoint``, optional); None if unknown."""
    selected = getattr(host, "selected_checkpoint", None)
    try:
        path = selected() if selected is not None else None
    except Exception:  # a host's guess failing only means "not known yet"
        logger.debug("No selected checkpoint", exc_info=True)
        path = None
    return checkpoint_family(path) if path else None
