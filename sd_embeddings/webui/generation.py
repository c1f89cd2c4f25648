"""What happens around each generation: two bug fixes in the WebUI's prompt path and a de-duplicated ``TI hashes``.

* ``fix_comma_backtrack``: the WebUI's ``tokenize_line`` moves the tokens after the last comma of a full chunk
  into the next chunk but leaves their embedding fixes behind (the embedding becomes ``!`` tokens and its vectors
  overwrite padding). We run the WebUI's own function and then move each orphaned fix to where its placeholder
  tokens went, so every other chunk stays exactly the WebUI's.
* ``cache_key_with_embeddings``: the conditioning cache key gains the embedding database version, so a changed
  or replaced file is used on the next generation of the same prompt.
* ``used_embeddings`` / ``ti_hashes``: which registered embeddings a generation's prompts use (token-id matching
  on the whole prompt, positive, negative and hires), so ``TI hashes`` is written once per embedding and also when
  the conditioning cache was hit.
* ``setup_conds_then``: runs a function right after ``StableDiffusionProcessing.setup_conds``, where the WebUI's
  ``model_hijack.extra_generation_params`` holds the conditioning's duplicated ``TI hashes`` and is about to be
  merged into ``p.extra_generation_params`` and written to ``params.txt``: the de-duplicated value goes there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..prompt.infotext import sanitize


def relocate_orphaned_fixes(chunks: list[Any], id_end: int, make_fix: Callable[[int, Any], Any]) -> int:
    """Move fixes left beyond a chunk's content to the start of the next chunk. Returns how many moved.

    A chunk's content ends at its first ``id_end`` after the start token; a fix at or beyond that offset can only
    come from comma back-tracking, and its placeholder ids (0) are then at ``offset - content`` in the next chunk.
    """
    moved = 0
    for index, chunk in enumerate(chunks[:-1]):
        body = chunk.tokens[1:-1]
        content = body.index(id_end) if id_end in body else len(body)
        orphans = [fix for fix in chunk.fixes if fix.offset >= content]
        if not orphans:
            continue
        following = chunks[index + 1]
        placed = []
        for fix in orphans:
            offset = fix.offset - content
            length = int(fix.embedding.vectors)
            if following.tokens[1 + offset: 1 + offset + length] != [0] * length:
                continue  # not the pattern the bug leaves: do not touch it
            chunk.fixes.remove(fix)
            placed.append(make_fix(offset, fix.embedding))
        following.fixes[:0] = placed
        moved += len(placed)
    return moved


def tokenize_line_with_fix(original: Callable, enabled: Callable[[], bool]) -> Callable:
    """Wrap ``TextConditionalModel.tokenize_line``: same chunks, orphaned fixes moved when ``enabled()``."""

    def tokenize_line(self: Any, line: str) -> tuple[list[Any], int]:
        chunks, token_count = original(self, line)
        if enabled() and len(chunks) > 1:
            from modules.sd_hijack_clip import PromptChunkFix

            relocate_orphaned_fixes(chunks, self.id_end, PromptChunkFix)
        return chunks, token_count

    tokenize_line.__wrapped__ = original  # type: ignore[attr-defined]
    return tokenize_line


def cached_params_with_embeddings(original: Callable, version: Callable[[], Any | None]) -> Callable:
    """Wrap ``StableDiffusionProcessing.cached_params``: the key also holds the embedding state version."""

    def cached_params(self: Any, *args: Any, **kwargs: Any) -> Any:
        key = original(self, *args, **kwargs)
        state = version()
        return key if state is None else (*key, ("sd-embeddings", state))

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


def used_embeddings(db: Any, tokenize: Callable[[list[str]], list[list[int]]], texts: Iterable[str]) -> dict:
    """Registered embeddings found in ``texts`` (by token ids, longest match first), keyed by name, in order."""
    found: dict[str, Any] = {}
    unique = list(dict.fromkeys(text for text in texts if text))
    for tokens in tokenize(unique) if unique else []:
        position = 0
        while position < len(tokens):
            embedding, length = db.find_embedding_at_position(tokens, position)
            if embedding is None:
                position += 1
                continue
            found.setdefault(embedding.name, embedding)
            position += length
    return found


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


def generation_texts(p: Any) -> list[str]:
    """Every prompt text of the current batch that goes through the text encoder (extra-network tags stripped)."""
    texts: list[str] = []
    for field in ("prompts", "negative_prompts", "hr_prompts", "hr_negative_prompts"):
        value = getattr(p, field, None)
        if isinstance(value, (list, tuple)):
            texts.extend(str(text) for text in value)
    if not texts:
        texts = [str(getattr(p, "prompt", "") or ""), str(getattr(p, "negative_prompt", "") or "")]
    return texts
