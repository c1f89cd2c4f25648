"""``embedding:name`` inside the WebUI: the database's second lookup, beside the WebUI-shaped ``ids_lookup``.

Every spelling of every usable embedding (``prompt.explicit.names_for``) starts with the same ``embedding``
token, so in ``ids_lookup`` they would all share one bucket that the WebUI's algorithm scans linearly; here they
sit in a ``KeywordIndex`` (one dict lookup per length) and ``ids_lookup`` keeps only bare keywords, exactly what
other readers of the database expect. Token ids come from the model's own tokenizer (as ``ids_lookup``'s do);
``embedding:`` + a name that starts with a letter or digit tokenizes as the two parts one after the other (CLIP
splits words at the colon), so the name's ids, cached for the bare keyword already, are reused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..prompt.explicit import PREFIX
from ..prompt.keywords import KeywordIndex


class _ExplicitIds:
    """A ``Tokenizer``-shaped view (``encode``) for ``embedding:<name>`` texts, reusing the name's cached ids when
    this tokenizer splits at the colon (checked once: CLIP's does; a tokenizer that does not gets whole texts)."""

    def __init__(self, ids_of: Callable[[str], list[int]]) -> None:
        self.ids_of = ids_of
        self.prefix = list(ids_of(PREFIX))
        self.splits = list(ids_of(PREFIX + "probe")) == self.prefix + list(ids_of("probe"))

    def encode(self, text: str) -> list[int]:
        name = text[len(PREFIX):]
        if self.splits and text.startswith(PREFIX) and name[:1].isalnum():
            return self.prefix + list(self.ids_of(name))
        return list(self.ids_of(text))


class ExplicitLookup:
    """Which embedding object an ``embedding:<name>`` at a token position means."""

    def __init__(self) -> None:
        self.index: KeywordIndex | None = None
        self.objects: dict[str, Any] = {}

    def build(self, embeddings: Iterable[Any], ids_of: Callable[[str], list[int]]) -> None:
        """Index the library's ``embeddings`` (objects with an ``entry``); others (Lora bundles) have no file name."""
        ours = [embedding for embedding in embeddings if getattr(embedding, "entry", None) is not None]
        self.objects = {embedding.entry.path: embedding for embedding in ours}
        self.index = KeywordIndex([embedding.entry for embedding in ours], _ExplicitIds(ids_of), bare=False)

    def clear(self) -> None:
        self.index, self.objects = None, {}

    def match(self, tokens: list[int], offset: int) -> tuple[Any, int] | None:
        found = self.index.match(tokens, offset) if self.index is not None and self.index.buckets else None
        if found is None:
            return None
        return self.objects[found[0].path], found[1]
