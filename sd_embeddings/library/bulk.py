"""Building thousands of small records at once (a scan, loading the cache) without the garbage collector's help."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: its repeated passes over every live object made a 10,000-file scan
    about twice as slow. Nothing built inside forms reference cycles, so nothing is left for it to find."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
