"""What happens around each generation: wrappers for the WebUI's prompt path and the de-duplicated ``TI hashes``.

* ``tokenize_line_with_fix``: the WebUI's ``tokenize_line`` moves the tokens after the last comma of a full chunk
  into the next chunk but leaves their embedding fixes behind (the embedding becomes ``!`` tokens and its vectors
  overwrite padding). We run the WebUI's own function, move each orphaned fix by the core's backtrack rule
  (``prompt.chunks.split_at_backtrack``) so every other chunk stays exactly the WebUI's, and hand the result to the
  per-generation record (``usage``): the only match of a prompt in a generation is the WebUI's own.
* ``cached_params_with_embeddings``: the conditioning cache key gains the embedding tables' state
  (``cond_cache.TablesState``), so a changed, added or deleted file that a prompt's encoding could match is used on
  the next generation of the same prompt, while a change no prompt reads keeps the cached conditioning; the key
  also tells the record which conditioning ``p`` is getting (cache hit or not).
* ``setup_conds_then``: runs a function after ``StableDiffusionProcessing.setup_conds``, where the
  WebUI's ``model_hijack.extra_generation_params`` holds the conditioning's duplicated ``TI hashes`` and is about to
  be merged into ``p.extra_generation_params`` and written to ``params.txt``: the de-duplicated value goes there.
* ``ti_hashes``: ``name: hash12`` once per embedding the record holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..prompt.chunks import split_at_backtrack
from ..prompt.infotext import sanitize
from .cond_cache import Reads, reading


def relocate_orphaned_fixes(chunks: list[Any], id_end: int, make_fix: Callable[[int, Any], Any]) -> int:
    """Move fixes left beyond a chunk's content to the start of the next chunk. Returns how many moved.

    A chunk's content ends at its first ``id_end`` after the start token: that is where the WebUI cut it after its
    last comma, so a fix at or beyond it is one the backtrack rule moves, and its placeholder ids (0) are then at
    ``offset - content`` in the next chunk. A fix whose placeholders are not there is left alone.
    """
    moved = 0
    for index, chunk in enumerate(chunks[:-1]):
        body = chunk.tokens[1:-1]
        content = body.index(id_end) if id_end in body else len(body)
        staying, orphans = split_at_backtrack(list(chunk.fixes), content, lambda fix: fix.offset)
        if not orphans:
            continue
        following = chunks[index + 1]
        placed = []
        for fix in orphans:
            offset, length = fix.offset - content, int(fix.embedding.vectors)
            if following.tokens[1 + offset: 1 + offset + length] != [0] * length:
                staying.append(fix)  # not the pattern the bug leaves: do not touch it
                continue
            placed.append(make_fix(offset, fix.embedding))
        chunk.fixes[:] = sorted(staying, key=lambda fix: fix.offset)
        following.fixes[:0] = placed
        moved += len(placed)
    return moved


def tokenize_line_with_fix(original: Callable, enabled: Callable[[], bool], make_fix: Callable[[int, Any], Any],
                           record: Callable[[str, list[Any], int, Reads], None]) -> Callable:
    """Wrap ``tokenize_line``: same chunks, orphaned fixes moved when ``enabled()``, the result ``record``-ed with
    the ``ids_lookup`` buckets the WebUI's matching looked up (``cond_cache``)."""

    def tokenize_line(self: Any, line: str) -> tuple[list[Any], int]:
        with reading() as reads:
            chunks, token_count = original(self, line)
        if enabled() and len(chunks) > 1:
            relocate_orphaned_fixes(chunks, self.id_end, make_fix)
        record(line, chunks, self.id_end, reads)
        return chunks, token_count

    tokenize_line.__wrapped__ = original  # type: ignore[attr-defined]
    return tokenize_line


def cached_params_with_embeddings(original: Callable, version: Callable[[], Any | None],
                                  seen: Callable[[Any, Any], None] = lambda p, key: None) -> Callable:
    """Wrap ``StableDiffusionProcessing.cached_params``: the key also holds ``version()``, the embedding tables'
    state (compared with ``==`` as the WebUI compares keys); ``seen`` learns which key ``p`` asks for."""

    def cached_params(self: Any, *args: Any, **kwargs: Any) -> Any:
        key = original(self, *args, **kwargs)
        state = version()
        key = key if state is None else (*key, ("sd-embeddings", state))
        seen(self, key)
        return key

    cached_params.__wrapped__ = original  # type: ignore[attr-defined]
    return cached_params


def setup_conds_then(original: Callable, after: Callable[[Any], None]) -> Callable:
    """Wrap a ``setup_conds`` method: ``after(p)`` runs once it has returned (also for a subclass's override)."""

    def setup_conds(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        after(self)
        return result

    setup_conds.__wrapped__ = original  # type: ignore[attr-defined]
    return setup_conds


def ti_hashes(embeddings: Iterable[Any]) -> str:
    """``TI hashes`` value: ``name: hash12`` once per embedding, in the WebUI's format (``:``/``,`` removed)."""
    items: dict[str, str] = {}
    for embedding in embeddings:
        shorthash = embedding.shorthash
        if not shorthash:
            continue
        name = sanitize(embedding.name)
        items.setdefault(name, f"{name}: {shorthash}")
    return ", ".join(items.values())


def ti_names(embeddings: Iterable[Any]) -> str:
    """Forge's ``TI`` value: each embedding's name once, in the ``TI hashes`` order, cleaned the same way."""
    return ", ".join(dict.fromkeys(sanitize(embedding.name) for embedding in embeddings))


def infotext_params(embeddings: list[Any], hashes: bool, names_param: str | None) -> dict[str, str | None]:
    """What a generation's infotext gets from the embeddings it used: ``TI hashes`` (when the WebUI's setting is
    on) and, where the WebUI writes a names line of its own (Forge's ``TI``, which repeats names and loses the
    negative prompt's), that line with each name once. ``None``: the key is to be removed. With no embedding used,
    a value the WebUI left there is stale: reForge's conditioning cache refills the parameters of the generation
    that filled the entry, whose other prompt may have used embeddings this one does not."""
    params: dict[str, str | None] = {"TI hashes": (ti_hashes(embeddings) or None) if hashes else None}
    if names_param:
        params[names_param] = ti_names(embeddings) or None
    return params
