"""The first scan at launch, on its own thread: it runs beside the WebUI's own start (imports, UI, model load), so
neither the UI nor the model load waits for it, and the API and the tab find it done (or wait for the rest)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..formats.logs import get_logger

logger = get_logger(__name__)
thread: threading.Thread | None = None
"""The last one started (tests wait for it)."""


def start(ensure_scanned: Callable[[], Any]) -> threading.Thread:
    global thread

    def scan() -> None:
        try:
            ensure_scanned()
        except Exception:  # the next caller scans again and reports
            logger.exception("Textual inversion: the first scan failed")

    thread = threading.Thread(target=scan, name="sd-embeddings-first-scan", daemon=True)
    thread.start()
    return thread
