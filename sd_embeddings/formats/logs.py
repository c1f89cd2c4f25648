"""Every log record of ours is made safe for a terminal before any handler sees it, whoever configured logging.

Log lines carry file names and names stored inside files. A name with ``ESC ]0;...BEL`` or ``ESC [2J`` would retitle
or clear the operator's terminal, and one with ``\\n`` would print whole lines of its own choosing (``INFO all 12
embeddings verified``). Each module takes its logger from ``get_logger``, which carries ``EscapeFilter``: the
message becomes ``printable`` (every control character escaped, newlines included, so a record is one line) and a
traceback keeps its own lines while the exception's text is escaped the same way. A logger's filters run for each
record created at it, before propagation, so the CLI's ``-v`` handler, the WebUI's console handler and any handler
the WebUI or a host installs (``--loglevel``) all receive the escaped record.
"""

from __future__ import annotations

import logging
import traceback

from .text import printable, terminal_text

_STRUCTURE = ("  ", "\n", "Traceback (most recent call last):")
"""How the traceback module starts the chunks it writes itself (frames, chain messages, the header); any other chunk
is an exception's own text (type, message, notes), which may quote a name."""


class EscapeFilter(logging.Filter):
    """Rewrites each record in place as printable text; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: the handler reports it as it would have
            return True
        record.msg, record.args = printable(message), None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = traceback_text(record.exc_info)
        if record.stack_info:
            record.stack_info = terminal_text(record.stack_info)
        return True


def traceback_text(exc_info: tuple) -> str:
    """The traceback as ``logging`` would write it, with each exception's own text on escaped single lines."""
    chunks = traceback.TracebackException(*exc_info).format()
    text = "".join(chunk if chunk.startswith(_STRUCTURE) else printable(chunk.rstrip("\n")) + "\n"
                   for chunk in chunks)
    return terminal_text(text.rstrip("\n"))


_FILTER = EscapeFilter()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` carrying ``EscapeFilter`` (once); every module of the package uses this."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
