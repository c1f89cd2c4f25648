"""The first scan at launch, on its own thread: it runs beside the WebUI's own start (imports, UI, model load), so
neither the UI nor the model load waits for it. The API never waits for it longer than ``wait``'s budget: it lists
what the scan has read so far (``Library.entries_so_far``) and says it is still scanning."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from ..formats.logs import get_logger
from ..library.bulk import release_memory

logger = get_logger(__name__)
thread: threading.Thread | None = None
"""The last one started (tests wait for it)."""
_by_db: weakref.WeakKeyDictionary[Any, threading.Thread] = weakref.WeakKeyDictionary()
_starting = threading.Lock()


def start(ensure_scanned: Callable[[], Any]) -> threading.Thread:
    global thread

    def scan() -> None:
        try:
            ensure_scanned()
        except Exception:  # the next caller scans again and reports
            logger.exception("Textual inversion: the first scan failed")
        release_memory()  # what reading thousands of headers left behind, beside the model loading meanwhile

    thread = threading.Thread(target=scan, name="sd-embeddings-first-scan", daemon=True)
    thread.start()
    return thread


def begin(db: Any) -> threading.Thread:
    """``db``'s first scan on its own thread: started once, or again if the last one ended without a scan."""
    with _starting:
        running = _by_db.get(db)
        if running is None or (not running.is_alive() and not db.scanned):
            running = _by_db[db] = start(db.ensure_scanned)
        return running


def wait(db: Any, timeout: float) -> bool:
    """Is ``db`` scanned, after waiting at most ``timeout`` seconds for its first scan (started if need be)?"""
    if not db.scanned:
        begin(db).join(timeout)
    return db.scanned
