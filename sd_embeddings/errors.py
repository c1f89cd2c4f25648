"""One error hierarchy for everything that can be wrong with an embedding file.

Each error carries the file it is about and a one-line, human reason; its ``status`` is the library status the
file gets (see ``records.Status``). Nothing else is ever raised out of a decoder for bad input.
"""

from __future__ import annotations

from pathlib import Path


class EmbeddingError(Exception):
    """A file could not be used as an embedding. ``reason`` is short and meant for users."""

    status = "corrupt"

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = str(path) if path is not None else None
        self.reason = reason
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}{reason}")


class UnsafeFileError(EmbeddingError):
    """The file asks to run or import something outside the allow-list (a pickle global, a code object)."""

    status = "unsafe"


class CorruptFileError(EmbeddingError):
    """The file is truncated, malformed or internally inconsistent."""

    status = "corrupt"


class NotAnEmbeddingError(EmbeddingError):
    """The file is readable but holds something else (a LoRA, a checkpoint, a plain picture)."""

    status = "not-an-embedding"


class UnsupportedFileError(EmbeddingError):
    """The file may be fine but this installation cannot read it (e.g. AVIF without the Pillow plugin)."""

    status = "unsupported"


class ChangedFileError(EmbeddingError):
    """The file was replaced after its entry was scanned, so its vectors are not the entry's: rescan and retry.

    Never recorded on an entry (the file is not bad); ``Library.load`` raises it instead of returning another
    version's vectors for a prompt that was matched against the old one.
    """

    status = "corrupt"


class WriteError(OSError):
    """Writing beside an embedding failed; ``kind`` says why in a way callers can map (HTTP: 403, 507, 400).

    ``kind`` is ``read-only`` (read-only file system or no write permission), ``disk-full`` (no space or quota
    left), ``name-too-long`` (the file name exceeds the file system's limit), ``not-a-file`` (a folder has the
    name) or ``failed`` (anything else). The
    message is one line naming the file and what happened; the original ``OSError`` is chained.
    """

    def __init__(self, path: str, kind: str, what: str, errno_value: int | None = None) -> None:
        super().__init__(errno_value, f"{path}: {what}")
        self.path = path
        self.kind = kind
        self.reason = what

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"
