"""Work counted, never timed: the lines of ``sd_embeddings`` that run during one call (``sys.settrace``).

A line count is the same on a loaded 2-core machine and an idle 32-core one, so a test can assert that an input
twice as long costs at most about twice the work. It sees Python loops (including comprehensions and recursion),
not the inside of one C call such as a regular expression's scan; those are kept linear by construction (see
``sd_embeddings/prompt/syntax.py``) and measured in ``benchmarks/prompt_hostile.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import sd_embeddings

PACKAGE = str(Path(sd_embeddings.__file__).resolve().parent)


def lines_run(func: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """How many lines of the package ``func(*args, **kwargs)`` runs (its result is dropped)."""
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def calls(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(PACKAGE) else None

    before = sys.gettrace()
    sys.settrace(calls)
    try:
        func(*args, **kwargs)
    finally:
        sys.settrace(before)
    return count


def growth(func: Callable[[str], Any], make: Callable[[int], str], size: int) -> tuple[int, int, float]:
    """(work for ``make(size)``, work for ``make(2 * size)``, their ratio): about 2 when linear, 4 when quadratic."""
    small = lines_run(func, make(size))
    large = lines_run(func, make(2 * size))
    return small, large, large / max(small, 1)
