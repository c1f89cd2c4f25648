"""Every character the command line prints goes through ``terminal_text``: a file name or a stored embedding name
holding ESC sequences, bidi overrides or undecodable bytes is shown escaped (``\\x1b``, U+FFFD), whichever command,
message or log line carries it (log records are escaped before, one line each: ``formats.logs``). Lines and tabs
pass unchanged, and so does the carriage return that starts a
progress bar's write (any other is escaped)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from ..formats.logs import get_logger
from ..formats.text import terminal_text

__all__ = ["SafeStream", "get_logger", "safe_output"]


class SafeStream:
    """A text stream that writes ``terminal_text`` of whatever it is given to the stream it wraps."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        rewind = "\r" if text.startswith("\r") else ""  # progress.py redraws its line with one leading \r
        self._stream.write(rewind + terminal_text(text[len(rewind):]))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding ... of the real stream
        return getattr(self._stream, name)


@contextlib.contextmanager
def safe_output() -> Iterator[None]:
    """Within: ``sys.stdout`` and ``sys.stderr`` are ``SafeStream``s (restored after, for in-process callers)."""
    saved = sys.stdout, sys.stderr
    for stream in saved:  # a locale that cannot spell a character gets '?' rather than an exception
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="replace")
    sys.stdout, sys.stderr = SafeStream(saved[0]), SafeStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
