"""The core's prompt diagnostics (``diagnostics.warnings_for``) for a WebUI generation: one comment line each.

The same warnings as the standalone host and ``encode`` (incompatible, failed, near-miss, too-long), found the same
way: each distinct prompt is tokenized with the bundled CLIP tokenizer (the vocabulary of the WebUI's SD1, SD2 and
SDXL models) after extra-network tags (``<lora:name:0.8>``) are removed and composable ``AND`` parts are split
(a part's trailing ``:weight`` dropped), both by the core's ``prompt_syntax``. Prompt-editing syntax is tokenized
as written: warnings are about words.
Lines are cached per library version, model family and text, so a repeated generation costs a dict lookup.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable

from ..library import Library
from ..prompt.chunks import CHUNK_LENGTH, indexes_for, tokenize_prompt
from ..prompt.diagnostics import PromptWarning, warnings_for
from ..prompt.syntax import prompt_parts
from ..prompt.tokenizer import bundled
from ..records import Family

logger = logging.getLogger(__name__)

PREFIX = "Textual inversion: "
CACHE_LIMIT = 1024
"""Distinct texts remembered per library version (a long batch of wildcard prompts must not grow it forever)."""

_CACHE: weakref.WeakKeyDictionary[Library, tuple[int, Family | None, dict[str, tuple[str, ...]]]] = \
    weakref.WeakKeyDictionary()


def line_for(warning: PromptWarning) -> str:
    if warning.kind != "too-long":
        return PREFIX + warning.message
    # the core spreads such an embedding over chunks; the WebUI's own chunker does not, so say what happens here
    return (f"{PREFIX}'{warning.word}' has more than the {CHUNK_LENGTH} vectors one chunk holds; the WebUI "
            "cannot place it in a prompt and this generation may fail or use it cut short.")


def _compute(library: Library, family: Family | None, text: str) -> tuple[str, ...]:
    tokenizer = bundled()
    indexes = indexes_for(library, tokenizer, family)
    lines: list[str] = []
    for part in prompt_parts(text):
        tokens = tokenize_prompt(part, tokenizer, indexes)
        lines += [line_for(warning) for warning in warnings_for(tokens, library, family)]
    return tuple(dict.fromkeys(lines))


def text_warnings(library: Library, family: Family | None, text: str) -> tuple[str, ...]:
    """Warning lines for one prompt text, cached until the library (files, collisions, model family) changes."""
    cached = _CACHE.get(library)
    if cached is None or cached[:2] != (library.version, family):
        cached = (library.version, family, {})
        _CACHE[library] = cached
    lines = cached[2]
    if text not in lines:
        if len(lines) >= CACHE_LIMIT:
            lines.clear()
        lines[text] = _compute(library, family, text)
    return lines[text]


def generation_warnings(library: Library, family: Family | None, texts: Iterable[str]) -> list[str]:
    """One line per warning over every distinct text of a generation; never raises (a failure is logged)."""
    found: dict[str, None] = {}
    for text in dict.fromkeys(str(text) for text in texts if text):
        try:
            found.update(dict.fromkeys(text_warnings(library, family, text)))
        except Exception:  # diagnostics must never stop a generation
            logger.exception("Textual inversion: could not check the prompt %r for embedding warnings", text[:80])
    return list(found)
