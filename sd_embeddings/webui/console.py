"""What the extension prints in the WebUI's console: one summary line, and one line per broken file.

The WebUI configures logging only with ``--loglevel``/``SD_WEBUI_LOG_LEVEL``. Without them, a normal launch still
ends up with a root handler at WARNING before extensions load (A1111's prepare step calls ``logging.debug``, reForge
an early ``logging.warning()``; each runs ``logging.basicConfig``), so INFO lines vanish and warnings print as
``WARNING:sd_embeddings.x:...``. The adapter therefore attaches one plain handler to the ``sd_embeddings`` logger
unless logging was set up on purpose (a log level the user chose, or a plain stream handler with a format of its
own on the root): warnings from the core (one line per bad file, no traceback) and the summary below reach the
console; library chatter at INFO does not.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from typing import Any

from ..formats.logs import get_logger
from ..formats.text import printable
from ..library import Library
from ..records import Family, Status
from . import settings

logger = get_logger(__name__)
_HANDLER_NAME = "sd-embeddings-console"


def user_log_level() -> str | None:
    """The log level the user gave the WebUI (``--loglevel``, else ``SD_WEBUI_LOG_LEVEL``), if any."""
    try:
        from modules import shared

        level = getattr(shared.cmd_opts, "loglevel", None)
    except ImportError:  # outside the WebUI
        level = None
    return level or os.environ.get("SD_WEBUI_LOG_LEVEL") or None


def _configured() -> bool:
    """Has someone set logging up on purpose? A log level the user gave, or a root stream handler with its own
    format (an implicit ``logging.basicConfig`` adds one with the default format; test runners add subclasses)."""
    return bool(user_log_level()) or any(
        type(h) is logging.StreamHandler and h.formatter is not None and h.formatter._fmt != logging.BASIC_FORMAT
        for h in logging.root.handlers)


def setup_logging() -> None:
    """Attach our console handler once (idempotent across Reload UI); nothing if logging was set up on purpose."""
    package = get_logger("sd_embeddings")
    if _configured() or any(h.get_name() == _HANDLER_NAME for h in package.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package.addHandler(handler)
    package.setLevel(logging.WARNING)
    package.propagate = False
    logger.setLevel(logging.INFO)


def say(line: str) -> None:
    """One line for the console at start (the adapter chosen, files not used)."""
    logger.info("%s", line)


def summary(library: Library) -> str:
    """``Textual inversion: 14 loaded, 2 incompatible (SDXL), 1 unsafe — see the tab``."""
    entries = library.entries
    counts = Counter(entry.status for entry in entries)
    families = Counter(entry.family for entry in entries if entry.status is Status.INCOMPATIBLE)
    parts = [f"{counts[Status.LOADED]} loaded"]
    if counts[Status.INCOMPATIBLE]:
        which = ", ".join(family.label if family is not Family.UNKNOWN else "unknown width"
                          for family in Family if families[family])
        parts.append(f"{counts[Status.INCOMPATIBLE]} incompatible ({which})")
    for status in (Status.DUPLICATE, Status.UNSAFE, Status.CORRUPT, Status.UNSUPPORTED):
        if counts[status]:
            parts.append(f"{counts[status]} {status.value}")
    pictures = counts[Status.NOT_AN_EMBEDDING]
    if pictures:
        parts.append(f"{pictures} not an embedding")
    tail = " — see the tab" if len(parts) > 1 else ""
    return f"Textual inversion: {', '.join(parts)}{tail}"


class SummaryPrinter:
    """Logs the summary when it changes, once a model is known (so 'incompatible' means something)."""

    def __init__(self) -> None:
        self.last = ""

    def __call__(self, library: Library, model_known: bool) -> None:
        if not model_known:
            return
        line = summary(library)
        if line != self.last:
            self.last = line
            logger.info("%s", line)


def print_at_load(db: Any) -> None:
    """The WebUI's own list of loaded and skipped names (its setting), when the lists changed since last shown."""
    shown = (tuple(db.word_embeddings), tuple(db.skipped_embeddings))
    if not settings.webui_option("textual_inversion_print_at_load", False) or shown == \
            db.previously_displayed_embeddings:
        return
    db.previously_displayed_embeddings = shown
    print(f"Textual inversion embeddings loaded({len(shown[0])}): {', '.join(map(printable, shown[0]))}")
    if shown[1]:
        print(f"Textual inversion embeddings skipped({len(shown[1])}): {', '.join(map(printable, shown[1]))}")
