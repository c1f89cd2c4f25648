"""Keywords that are common English words: typed for their meaning, they would fire an embedding (A1111 #8060).

The list ships as ``data/common_words.txt`` and is made from the CLIP vocabulary this package already ships
(``data/bpe_simple_vocab_16e6.txt.gz``, MIT, see ``data/LICENSE-CLIP.txt``), so no word list of another licence is
involved. CLIP's byte-pair merges are listed in the order they were learnt, the most frequent pair of its caption
corpus first; a merge whose result ends in ``</w>`` makes a whole word. So the order in which whole-word tokens
appear is a frequency ranking of words in image captions, which is what prompts are made of. ``build`` keeps the
first ``COUNT`` of them that look like dictionary words: lower-case letters only (no digits, no punctuation, which
drops hashtags, emoji and most brand spellings), 3 to 15 letters, at least one vowel. A few word endings that CLIP
also keeps whole (``ing``, ``ation``) pass that filter; they do no harm, as no embedding is named so.
``tests/test_common_words.py`` rebuilds the list and compares it with the shipped file.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
from importlib import resources

COUNT = 8000
"""Deep enough to hold prompt staples such as ``masterpiece`` (about rank 6,800)."""
DATA_FILE = "common_words.txt"
VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
_MERGES_USED = 49152 - 256 - 2  # as the tokenizer: the merges CLIP's 49,408-token vocabulary uses
_WORD = re.compile(r"[a-z]{3,15}")
_VOWEL = re.compile(r"[aeiouy]")
HEADER = ("# The most frequent whole-word tokens of CLIP's BPE vocabulary (data/bpe_simple_vocab_16e6.txt.gz, MIT),\n"
          "# in merge order, letters only, 3-15 letters, with a vowel. Made by sd_embeddings/library/common_words.py\n"
          "# (build); tests/test_common_words.py checks this file against it.\n")


def build(vocab_path: str | os.PathLike, count: int = COUNT) -> list[str]:
    """The common-word list from CLIP's merges file, most frequent first (see the module docstring)."""
    with gzip.open(vocab_path, "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")[1:_MERGES_USED + 1]
    words: list[str] = []
    seen: set[str] = set()
    for line in lines:
        token = line.replace(" ", "")
        if not token.endswith("</w>"):
            continue
        word = token[:-4]
        if word not in seen and _WORD.fullmatch(word) and _VOWEL.search(word):
            seen.add(word)
            words.append(word)
            if len(words) == count:
                break
    return words


def file_text(words: list[str]) -> str:
    return HEADER + "\n".join(words) + "\n"


@functools.lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """The shipped list (read once)."""
    text = (resources.files("sd_embeddings") / "data" / DATA_FILE).read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def is_common_word(keyword: str) -> bool:
    """True when the keyword, compared as CLIP compares it (lower case, outer spaces ignored), is on the list."""
    return keyword.strip().lower() in common_words()
