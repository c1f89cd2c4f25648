"""The database's tables updated for the few files a scan changed, instead of rebuilt from every entry.

A rebuild walks all 10,000 entries (objects, ``word_embeddings``, the ids of every name, each ``ids_lookup``
bucket sorted again) for one dropped file. When the library says which paths the change touched
(``Library.changes``: the new public entries of those paths' keywords) and the tables were built from the version
just before it, for the same model, only those paths are looked at: their old objects leave the tables, their new
ones go in, and only the ``ids_lookup`` buckets they are in are sorted again. Anything else (a model switch, many
names to tokenize, a full resolve) gets the rebuild.
"""

from __future__ import annotations

from typing import Any

from ..formats.logs import get_logger
from ..records import Status
from .embedding import fits, object_maker
from .keyword_index import SYNC_LIMIT, claims_its_name, replace_contents

logger = get_logger(__name__)


def update(db: Any, model: Any) -> bool:
    """Apply the library's last change to ``db``'s tables; False (nothing done) when a rebuild is needed."""
    library = db.library
    version, (before, paths) = library.version, library.changes
    if paths is None or model is None or version != before + 1 or db._built != (before, db._model_key) \
            or len(paths) > SYNC_LIMIT or not db.index.ready.is_set():
        return False
    gone = _take_out(db, paths)
    came = _put_in(db, paths)
    db.index.prepare(model, [name for name, _ in came], lambda job: None)
    lookup, touched = db.ids_lookup, set()
    for name, embedding in gone:
        ids = db.index.get(name)
        if ids:
            bucket = lookup.get(ids[0], [])
            bucket[:] = [item for item in bucket if item[1] is not embedding]
            touched.add(ids[0])
    names = dict(db.word_embeddings)
    for name, _ in gone:
        names.pop(name, None)
    for name, embedding in ((name, db._listed[name]) for name, _ in came + gone if name in db._listed):
        if not _index_name(db, lookup, touched, name, embedding):
            names[name] = embedding
    for first in touched:
        if lookup.get(first):
            lookup[first].sort(key=lambda item: (-len(item[0]), claims_its_name(item[1])))
        else:
            lookup.pop(first, None)
    replace_contents(db.word_embeddings, dict(sorted(names.items(), key=lambda item: item[0].lower())))
    db.explicit.build(db._listed.values(), lambda text: db._tokenize(model, text), library.entries)
    db._built = (version, db._model_key)
    db.changed(touched)
    db.index.save_later()
    return True


def _take_out(db: Any, paths: frozenset[str]) -> list[tuple[str, Any]]:
    """Remove the changed paths' old objects from the tables; ``(name, object)`` of each that was listed."""
    gone = []
    for path in paths:
        old = db._objects.get(path)
        if old is None:
            continue
        name = old.name
        if db.skipped_embeddings.get(name) is old:
            del db.skipped_embeddings[name]
        if db._loaded.get(name) is old:
            del db._loaded[name]
            if db._listed.get(name) is old:
                external = db._external.get(name)
                if external is None:
                    del db._listed[name]
                else:  # a name registered from outside shows again once no file of ours has it
                    db._listed[name] = external
            gone.append((name, old))
    return gone


def _put_in(db: Any, paths: frozenset[str]) -> list[tuple[str, Any]]:
    """Objects for the changed paths' new entries, into the tables; ``(name, object)`` of each that fits."""
    make, came = object_maker(db), []
    for path in paths:
        before = db._objects.pop(path, None)
        entry = db.library.find(path)
        if entry is None or entry.status not in (Status.LOADED, Status.INCOMPATIBLE):
            continue
        embedding = db._objects[path] = make(entry, before)
        if fits(db, entry):
            db._loaded[embedding.name] = db._listed[embedding.name] = embedding
            came.append((embedding.name, embedding))
        else:
            db.skipped_embeddings[embedding.name] = embedding
    return came


def _index_name(db: Any, lookup: dict, touched: set, name: str, embedding: Any) -> bool:
    """Put a listed name into ``ids_lookup`` (bare keywords on, or registered from outside); True when its ids
    are empty (it cannot be used in a prompt, and is left out of the tables as a rebuild would)."""
    if not (db.bare_keywords or db._external.get(name) is embedding):
        return False
    ids = db.index.get(name)
    if ids is not None and not ids:
        logger.warning("Embedding %s: its name %r gives no tokens; it cannot be used in a prompt",
                       getattr(embedding, "filename", name), name)
        return True
    if ids:
        bucket = lookup.setdefault(ids[0], [])
        bucket[:] = [item for item in bucket if item[1].name != name]
        bucket.append((list(ids), embedding))
        touched.add(ids[0])
    return False
