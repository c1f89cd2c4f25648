"""One found file -> its entry: from the scan cache when the file is unchanged, else from its header (or, for a
deep scan, every value). Whatever goes wrong becomes the entry's status and reason; nothing escapes."""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable

from ..errors import EmbeddingError, NotAnEmbeddingError
from ..formats import decoding as formats
from ..formats.logs import get_logger
from ..records import EmbeddingData, Entry, Status
from . import scan_record
from .containment import Root, read_embedding, scan_embedding
from .hashing import HashCache
from .scanning import FoundFile
from .verifier import unexpected

logger = get_logger(__name__)

EMPTY_FILE = "empty file (0 bytes); the download or copy probably failed"
"""The reason for a 0-byte file, wherever it is reported (scan, inspect)."""


def read_entry(item: FoundFile, hash_cache: HashCache, deep: bool,
               remember: Callable[[Entry, EmbeddingData], None]) -> Entry:
    """The entry of ``item``; ``remember`` keeps the vectors a deep scan decoded (so a prompt need not re-read)."""
    stem = os.path.splitext(item.name)[0]
    entry = Entry(path=item.path, root=item.root, folder=item.folder, keyword=stem, format=item.format,
                  size=item.size, mtime_ns=item.mtime_ns, status=Status.LOADED, sidecars=item.sidecars,
                  ctime_ns=item.ctime_ns, inode=item.inode)
    if item.refused:  # a link leading outside its folder: listed with the reason, never opened
        entry.status = entry.file_status = Status.UNSUPPORTED
        entry.reason = entry.file_reason = item.refused
        logger.warning("Embedding %s: %s", item.path, item.refused)
        return entry
    entry.sha256 = hash_cache.get(item.path, item.stamp)
    cached = None if deep else hash_cache.get_scan(item.path, item.stamp)
    if cached is not None and scan_record.restore(entry, cached):
        return entry
    try:
        _read_contents(entry, item, deep, remember)
    except EmbeddingError as e:
        entry.status, entry.reason = Status(e.status), e.reason
        log = logger.info if entry.format == "image" and e.status == "not-an-embedding" else logger.warning
        log("Embedding %s: %s", item.path, e.reason)
    except Exception as e:  # a bug must not stop the scan; report it like a bad file (and do not cache it)
        logger.exception("Unexpected error reading %s", item.path)
        entry.status, entry.reason = Status.CORRUPT, unexpected(item.path, e).reason
        entry.file_status, entry.file_reason = entry.status, entry.reason
        return entry
    entry.file_status, entry.file_reason = entry.status, entry.reason
    hash_cache.put_scan(entry.path, entry.stamp, scan_record.store(entry))
    return entry


def _read_contents(entry: Entry, item: FoundFile, deep: bool,
                   remember: Callable[[Entry, EmbeddingData], None]) -> None:
    if item.size == 0:
        raise NotAnEmbeddingError(item.path, EMPTY_FILE)
    root = item.within or Root.known(item.root)
    if deep:
        data = formats.decode(read_embedding(root, item.path), item.path)
        entry.header = formats.header_of(data)
        entry.verified = True
        remember(entry, data)
    else:
        entry.header = scan_embedding(root, item.path)
    if item.format == "image" and entry.header.name and plain_name(entry.header.name):
        entry.keyword = entry.header.name


_ENTITY = re.compile(r"&(#\d+|#x[0-9a-f]+|[a-z][a-z0-9]*);", re.IGNORECASE)


def plain_name(name: str) -> bool:
    """A name stored inside a picture becomes its keyword only when it is plain text: no control or format
    characters, no HTML entity, no outer spaces, unchanged by NFKC. The WebUI's tokenizer folds those away
    (``&#103;oodemb``, ``\\x1bgoodemb`` and ``ｇoodemb`` all read as ``goodemb``), so such a name could take another
    file's keyword while every comparison of names saw two different words; the file's own stem is used instead."""
    return (name == name.strip() and unicodedata.normalize("NFKC", name) == name and not _ENTITY.search(name)
            and not any(unicodedata.category(ch).startswith("C") for ch in name))

