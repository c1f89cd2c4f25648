"""How much work one file may cost, and the one place where a decoder's stray exception gets a reason.

Every decode carries a ``Budget``: pickle opcodes run and structure nodes walked count as *nodes*; bytes copied
out of the file (inflated members, tensor data) count as *bytes*. A tiny file that asks for exponential work or a
huge allocation runs out of budget and is refused as corrupt, long before it could hang or exhaust the process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import CorruptFileError, EmbeddingError

MAX_NODES = 1_000_000
"""Opcodes plus walked nodes: a real embedding needs under 1,000; a 1,000-tensor state dict about 40,000."""
MAX_BYTES = 256 * 1024 * 1024
"""Bytes produced while decoding one file (the largest accepted file is 64 MB; its tensors are copied once)."""
MAX_DIMS = 8
"""Most dimensions a tensor read from a file may declare (an embedding has 2): shape walks stay linear and short."""


@dataclass
class Budget:
    path: str
    nodes: int = MAX_NODES
    bytes: int = MAX_BYTES

    def spend_nodes(self, count: int = 1) -> None:
        self.nodes -= count
        if self.nodes < 0:
            raise CorruptFileError(self.path, f"structure is too large to be an embedding (over {MAX_NODES:,} "
                                              "objects or references; refused before it could hang the scan)")

    def spend_bytes(self, count: int) -> None:
        self.bytes -= count
        if self.bytes < 0:
            raise CorruptFileError(self.path, f"data would expand past {MAX_BYTES // 2**20} MB in memory (refused)")


_KNOWN = {
    RecursionError: "nests too deeply",
    MemoryError: "needs more memory than any embedding (refused)",
    OverflowError: "holds a number too large for its field",
    EOFError: "ends early (truncated)",
    UnicodeDecodeError: "holds text that is not valid UTF-8",
    KeyError: "refers to a part that is missing",
    IndexError: "refers to a position past its end",
}


def shown(text: str, limit: int = 60) -> str:
    """Text from a file (a key, a member name), fit for a one-line reason: printable and cut short."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit]) + ("..." if len(text) > limit else "")


def reason_for(error: BaseException, what: str) -> str:
    """A one-line reason from the exception's type only: its message may quote bytes of the file."""
    if isinstance(error, ValueError) and "integer string conversion" in str(error):  # Python's own message
        return f"{what} holds a number with thousands of digits (refused)"
    for kind, text in _KNOWN.items():
        if isinstance(error, kind):
            return f"{what} {text}"
    return f"{what} is broken ({type(error).__name__})"


@contextlib.contextmanager
def classified(path: str, what: str) -> Iterator[None]:
    """Any exception inside becomes this file's ``CorruptFileError`` (``EmbeddingError`` passes, with its path)."""
    try:
        yield
    except EmbeddingError as e:
        if e.path is None:  # raised by a helper that does not know the file
            raise type(e)(path, e.reason) from e
        raise
    except Exception as e:  # RecursionError and MemoryError included
        raise CorruptFileError(path, reason_for(e, what)) from e
