"""Names as text that is safe to show, print and put in JSON, whatever bytes the file system holds.

On Linux a file name is bytes; Python hands back the bytes that are not UTF-8 as lone surrogates
(``b'caf\\xe9.pt'`` -> ``'caf\\udce9.pt'``), and JSON or a strict UTF-8 stream refuses those. The library keeps
the real name for opening the file and offers ``shown`` for everything a person or a program reads.
"""

from __future__ import annotations

from ..formats.text import REPLACEMENT, printable, shown
from ..records import Entry

__all__ = ["REPLACEMENT", "display_name", "display_path", "printable", "shown"]


def display_name(entry: Entry) -> str:
    """The keyword as people see it (``caf\ufffd`` for a file named ``b'caf\\xe9.pt'``)."""
    return shown(entry.keyword)


def display_path(entry: Entry) -> str:
    """The path relative to its embeddings folder, ``/``-separated, safe to show."""
    return shown(entry.relpath)
