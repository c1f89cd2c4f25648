"""A one-line progress bar on stderr for long scans and hash runs (silent when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def progress_bar(label: str, enabled: bool | None = None, min_total: int = 200) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that redraws at most ten times a second."""
    show = sys.stderr.isatty() if enabled is None else enabled
    last = [0.0]

    def update(done: int, total: int) -> None:
        if not show or total < min_total:
            return
        now = time.monotonic()
        if done < total and now - last[0] < 0.1:
            return
        last[0] = now
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return update
