"""``embedding:name`` inside the WebUI: the database's second lookup, beside the WebUI-shaped ``ids_lookup``.

Every spelling of every usable embedding (``prompt.explicit.names_for``) starts with the same ``embedding``
token, so in ``ids_lookup`` they would all share one bucket that the WebUI's algorithm scans linearly; here they
sit in a ``KeywordIndex`` (one dict lookup per length) and ``ids_lookup`` keeps only bare keywords, exactly what
other readers of the database expect. Token ids come from the model's own tokenizer (as ``ids_lookup``'s do),
built from the name's parts where that gives the same ids (``keywords.SpellingIds``: the keyword's ids, cached
for the bare keyword already, are reused).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..prompt.keywords import KeywordIndex


class _ModelIds:
    """A ``Tokenizer``-shaped view (``encode``) of the model's tokenizer, through the database's cache."""

    def __init__(self, ids_of: Callable[[str], list[int]]) -> None:
        self.encode = ids_of


class ExplicitLookup:
    """Which embedding object an ``embedding:<name>`` at a token position means."""

    def __init__(self) -> None:
        self.index: KeywordIndex | None = None
        self.objects: dict[str, Any] = {}

    def build(self, embeddings: Iterable[Any], ids_of: Callable[[str], list[int]]) -> None:
        """Index the library's ``embeddings`` (objects with an ``entry``); others (Lora bundles) have no file name."""
        ours = [embedding for embedding in embeddings if getattr(embedding, "entry", None) is not None]
        self.objects = {embedding.entry.path: embedding for embedding in ours}
        self.index = KeywordIndex([embedding.entry for embedding in ours], _ModelIds(ids_of), bare=False)

    def clear(self) -> None:
        self.index, self.objects = None, {}

    def match(self, tokens: list[int], offset: int) -> tuple[Any, int] | None:
        found = self.index.match(tokens, offset) if self.index is not None and self.index.buckets else None
        if found is None:
            return None
        return self.objects[found[0].path], found[1]
