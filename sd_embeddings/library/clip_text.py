"""What a CLIP tokenizer sees of a text, without its vocabulary: the identity of a keyword.

CLIP's tokenizer normalises text (``ftfy.fix_text``, runs of whitespace to one space, lower case), cuts it into
pieces (letter runs, single digits, punctuation runs, a few contractions; whitespace is dropped) and byte-pair
encodes each piece alone. So two texts give the same token ids exactly when they give the same pieces:
``bad -hands-5`` and ``bad-hands-5`` are one keyword to the model (``bad``, ``-``, ``hands``, ``-``, ``5``).
``keyword_key`` is that piece sequence as text, and every rule about which file owns a keyword (collisions, the
keyword index, ``embedding:name``) compares keywords by it, never by the raw text. The key also unescapes HTML
entities twice, as OpenCLIP's tokenizer (SD2) does, so it joins every text that any of the WebUI's tokenizers
would read alike (joining a few more costs a ``duplicate`` status with its reason, never a stolen keyword).
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from typing import Any

import regex

from ..formats.logs import get_logger

logger = get_logger(__name__)

PIECES = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)
SPACES = regex.compile(r"\s+")
_ASCII_PIECES = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")
"""``PIECES`` for lower-case printable ASCII, with the standard library's faster engine (most names)."""


def _unchanged_by_ftfy(text: str) -> bool:
    """Printable ASCII without ``&``: nothing for ftfy to fix (no entity, mojibake, quote, width or control)."""
    return text.isascii() and text.isprintable() and "&" not in text


def normalize(text: str) -> str:
    """``ftfy.fix_text``, whitespace runs to one space, lower case (transformers' CLIPTokenizer with ftfy)."""
    if not _unchanged_by_ftfy(text):
        fix_text = ftfy_fix_text()
        text = fix_text(text) if fix_text is not None else unicodedata.normalize("NFC", text)
    return SPACES.sub(" ", text).strip().lower()


@functools.lru_cache(maxsize=1)
def ftfy_fix_text() -> Any:
    """ftfy's ``fix_text``, or None (logged once) when ftfy is not installed."""
    try:
        from ftfy import fix_text
    except ImportError:
        logger.warning("ftfy is not installed: curly quotes, full-width letters, ligatures and mojibake are "
                       "tokenized unlike the WebUI (pip install ftfy)")
        return None
    return fix_text


def pieces(text: str) -> list[str]:
    """The pieces CLIP byte-pair encodes one by one (their ids, in order, are the text's ids)."""
    return PIECES.findall(normalize(text))


_KEYS: dict[str, str] = {}
_MAX_KEYS = 1 << 17


def keyword_key(keyword: str) -> str:
    """How keywords are compared: equal exactly when a WebUI tokenizer could give them equal token ids (case,
    spaces CLIP drops, ftfy's fixes, HTML entities). Pieces hold no whitespace, so joining them by spaces is
    unambiguous. Cached: the library and the keyword index ask for the same few thousand names on every rebuild.
    A plain dict emptied when full, not an LRU: its per-name node held ~60 bytes more for each of 10,000 names."""
    found = _KEYS.get(keyword)
    if found is None:
        if len(_KEYS) >= _MAX_KEYS:
            _KEYS.clear()
        found = _KEYS[keyword] = _keyword_key(keyword)
    return found


def _keyword_key(keyword: str) -> str:
    if _unchanged_by_ftfy(keyword):
        return " ".join(_ASCII_PIECES.findall(keyword.lower()))
    text = normalize(keyword)
    if "&" in text:
        text = normalize(html.unescape(html.unescape(text)))
    return " ".join(PIECES.findall(text))
