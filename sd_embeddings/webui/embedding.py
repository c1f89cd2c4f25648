"""``Embedding`` objects for the WebUI, backed by library entries.

The class subclasses the WebUI's own ``Embedding`` (the host imports it lazily; built once per base class) so
``isinstance`` checks, ``save()`` and ``checksum()`` keep working. Vectors are decoded on first use of ``.vec``
(through the library's cache) and moved to the compute device as float32, as the WebUI does at load.
``hash``/``shorthash`` come from the library's path-keyed hash cache unless someone assigns them.

A file replaced between the scan and that first read (``ChangedFileError``) is expected, not a crash: the database
rescans (``refresh``) and the new file's vectors are used if they have as many rows as the prompt was laid out
for; otherwise the vectors an earlier object of the same file had loaded (``previous_vec``) are kept; otherwise a
``ChangedFileError`` naming the file and the row counts is raised.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from ..errors import ChangedFileError
from ..formats.logs import get_logger
from ..library import Library
from ..records import Entry, Status

logger = get_logger(__name__)


def _to_device(vec: Any, device: Any) -> Any:
    import torch

    if isinstance(vec, dict):
        return {key: _to_device(value, device) for key, value in vec.items()}
    return vec.detach().to(device=device, dtype=torch.float32)


class LibraryEmbeddingMixin:
    """One embedding file as the WebUI sees it; ``entry``/``reason``/``family`` are our additions. Mixed into the
    WebUI's ``Embedding`` by ``embedding_class`` (its ``__init__`` runs through ``super()``)."""

    def __init__(self, library: Library, entry: Entry, device: Any = None, hashing: bool = True,
                 refresh: Callable[[str], Entry | None] | None = None) -> None:
        self._library = library
        self._refresh = refresh
        self.previous_vec: Any = None
        """Vectors an earlier object of the same file had loaded: the last resort if the file is replaced."""
        self._device = device
        self._hashing = hashing
        self._vec = None
        self._hash: str | None = None
        self._shorthash: str | None = None
        self.entry = entry
        header = entry.header
        super().__init__(None, entry.keyword, step=header.step if header else None)  # type: ignore[call-arg]
        self.shape = entry.width
        self.vectors = entry.vectors
        self.sd_checkpoint = header.sd_checkpoint if header else None
        self.sd_checkpoint_name = header.sd_checkpoint_name if header else None
        self.filename = entry.path
        self.loaded = None  # as for files from the embeddings folder (Lora checks it)

    @property
    def reason(self) -> str:
        return self.entry.reason

    @property
    def family(self) -> str:
        return self.entry.family.value

    def stamp(self) -> tuple[str, ...]:
        return (self.entry.path, *self.entry.stamp)

    @property
    def vec(self) -> Any:
        if self._vec is None and getattr(self, "entry", None) is not None:
            try:
                vec = self._library.load(self.entry).vec
            except ChangedFileError as e:
                vec = self._replaced(e)
            self._vec = _to_device(vec, self._device)
            self.previous_vec = None
        return self._vec

    def _replaced(self, error: ChangedFileError) -> Any:
        """Vectors to use for a file replaced after its scan, with as many rows as were registered."""
        fresh = self._refresh(self.entry.path) if self._refresh is not None else None
        if fresh is not None and fresh.status is Status.LOADED and fresh.vectors == self.vectors:
            try:
                vec = self._library.load(fresh).vec
                logger.info("Embedding %s was replaced; using the new file", self.entry.path)
                return vec
            except ChangedFileError as again:
                error = again
        if self.previous_vec is not None:
            logger.warning("Embedding %s was replaced during this generation; using the vectors loaded before",
                           self.entry.path)
            return self.previous_vec
        now = f"now has {fresh.vectors} vectors" if fresh is not None else "is gone or unreadable now"
        reason = (f"the file was replaced during this generation and {now}, but the prompt was laid out for "
                  f"{self.vectors}; generate again")
        raise ChangedFileError(self.entry.path, reason) from error

    @vec.setter
    def vec(self, value: Any) -> None:
        self._vec = value

    @property
    def vec_loaded(self) -> bool:
        return self._vec is not None

    @property
    def hash(self) -> str:
        if self._hash is not None:
            return self._hash
        if not self._hashing or getattr(self, "entry", None) is None:
            return ""
        return self._library.ensure_hash(self.entry) or ""

    @hash.setter
    def hash(self, value: str | None) -> None:
        self._hash = value

    @property
    def shorthash(self) -> str:
        if self._shorthash is not None:
            return self._shorthash
        return self.hash[:12]

    @shorthash.setter
    def shorthash(self, value: str | None) -> None:
        self._shorthash = value


@functools.lru_cache(maxsize=4)
def embedding_class(base: type) -> type:
    """A subclass of the WebUI's ``Embedding`` (given by the host, imported lazily) backed by a ``Library`` entry."""
    return type("LibraryEmbedding", (LibraryEmbeddingMixin, base), {"__module__": __name__})


class EmbeddingDir:
    """Stands in for the WebUI's ``DirWithTextualInversionEmbeddings`` (``path``, ``mtime``, ``has_changed``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.mtime: float | None = None

    def has_changed(self) -> bool:
        return os.path.isdir(self.path) and (self.mtime is None or os.path.getmtime(self.path) > self.mtime)

    def update(self) -> None:
        if os.path.isdir(self.path):
            self.mtime = os.path.getmtime(self.path)


def embedding_objects(db: Any) -> tuple[dict[str, Any], dict[str, Any], dict[tuple, Any]]:
    """``(fitting, skipped)`` embedding objects by name for the database ``db``, and the objects by file stamp (the
    next call's ``db._objects``): an unchanged file keeps its object (and vectors)."""
    cls = embedding_class(db.host.embedding_base())
    device, hashing = db.host.device(), db.host.hashing()
    loaded: dict[str, Any] = {}
    skipped: dict[str, Any] = {}
    objects: dict[tuple[str, int, int], Any] = {}
    loaded_before = {old.entry.path: old for old in db._objects.values() if old.vec_loaded}
    for entry in db.library.entries:
        if entry.status not in (Status.LOADED, Status.INCOMPATIBLE):
            continue
        stamp = (entry.path, *entry.stamp)
        embedding = db._objects.get(stamp)
        if embedding is None:
            embedding = cls(db.library, entry, device, hashing, db.rescan_after_replace)
            before = loaded_before.get(entry.path)
            if before is not None and before.vectors == entry.vectors:
                embedding.previous_vec = before.vec
        embedding.entry = entry
        objects[stamp] = embedding
        fits = entry.status is Status.LOADED and (db.expected_shape == -1 or entry.width == db.expected_shape)
        (loaded if fits else skipped)[embedding.name] = embedding
    return loaded, skipped, objects
