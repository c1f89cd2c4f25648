"""The CLIP ViT-L/14 byte-pair tokenizer, offline, plus the small protocol hosts use to pass their own.

SD1, SD2 (OpenCLIP ViT-H) and SDXL (both encoders) share one vocabulary, so one tokenizer serves every family.
The vocabulary ships as package data (``data/bpe_simple_vocab_16e6.txt.gz``, MIT, see ``data/LICENSE-CLIP.txt``);
a model folder's ``tokenizer/vocab.json`` + ``merges.txt`` is used instead when one is given. Text is normalised
as the WebUI's tokenizer (transformers 4.x ``CLIPTokenizer`` with ftfy, which every WebUI has) does it:
``ftfy.fix_text`` (curly quotes, full-width letters, ligatures, mojibake, HTML entities; NFC), runs of whitespace
to one space, lower case. Without ftfy (a bare host) it falls back to NFC + whitespace + lower case and logs once.
"""

from __future__ import annotations

import functools
import gzip
import heapq
import json
import os
import threading
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..formats.logs import get_logger
from ..library.clip_text import PIECES as _PIECES
from ..library.clip_text import normalize

logger = get_logger(__name__)
__all__ = ["ClipTokenizer", "Tokenizer", "TransformersTokenizer", "bundled", "for_model", "normalize"]

BOS_TEXT = "<|startoftext|>"
EOS_TEXT = "<|endoftext|>"
_VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
# Number of merges CLIP uses from the file: 49408 ids = 256 bytes x 2 (with and without </w>) + merges + 2 specials.
_MERGES_USED = 49152 - 256 - 2
CACHED_PIECE_LENGTH = 64
"""Words longer than this are not cached (real words are far shorter; a cache of huge ones would grow memory)."""


@runtime_checkable
class Tokenizer(Protocol):
    """What prompt processing needs from a tokenizer; inside the WebUI the model's own is adapted to this."""

    bos_id: int
    eos_id: int
    pad_id: int
    comma_id: int

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without start/end tokens and without truncation."""
        ...


@functools.lru_cache(maxsize=1)
def _byte_symbols() -> dict[int, str]:
    """Map every byte to a printable character (the byte-level trick of GPT-2/CLIP vocabularies)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return symbols


class ClipTokenizer:
    """Byte-level BPE with CLIP's end-of-word marker ``</w>``; thread-safe, with a per-word cache."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
        self.vocab = vocab
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.bos_id = vocab[BOS_TEXT]
        self.eos_id = vocab[EOS_TEXT]
        self.pad_id = self.eos_id  # CLIP-L pads with the end token; OpenCLIP encoders pad with 0 (conditioning)
        self.comma_id = vocab[",</w>"]
        self._symbols = _byte_symbols()
        self._cache: dict[str, tuple[int, ...]] = {BOS_TEXT: (self.bos_id,), EOS_TEXT: (self.eos_id,)}
        self._lock = threading.Lock()
        self._decoder: dict[int, str] | None = None

    @classmethod
    def from_bpe_file(cls, path: str | os.PathLike) -> ClipTokenizer:
        """From CLIP's ``bpe_simple_vocab_16e6.txt.gz`` (the merges list; the vocabulary follows from it)."""
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            lines = handle.read().split("\n")[1:_MERGES_USED + 1]
        merges = [tuple(line.split()) for line in lines]
        byte_chars = list(_byte_symbols().values())
        words = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(pair) for pair in merges]
        words += [BOS_TEXT, EOS_TEXT]
        return cls({word: i for i, word in enumerate(words)}, merges)  # type: ignore[arg-type]

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> ClipTokenizer:
        """From a transformers tokenizer folder (``vocab.json`` + ``merges.txt``)."""
        folder = Path(folder)
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
        return cls(vocab, merges)  # type: ignore[arg-type]

    def save_folder(self, folder: str | os.PathLike) -> None:
        """Write ``vocab.json`` + ``merges.txt`` (what transformers' ``CLIPTokenizer`` reads)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        merges = sorted(self.ranks, key=self.ranks.__getitem__)
        text = "#version: 0.2\n" + "\n".join(" ".join(pair) for pair in merges) + "\n"
        (folder / "merges.txt").write_text(text, encoding="utf-8")

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in _PIECES.findall(normalize(text)):
            ids.extend(self._word(piece))
        return ids

    def decode(self, ids: list[int]) -> str:
        """Ids back to text (for display); end-of-word markers become spaces."""
        if self._decoder is None:
            self._decoder = {i: word for word, i in self.vocab.items()}
        back = {c: b for b, c in self._symbols.items()}
        text = "".join(self._decoder.get(i, "") for i in ids)
        raw = bytearray()
        for part in text.replace("</w>", " "):
            raw.extend(part.encode("utf-8") if part == " " or part not in back else bytes([back[part]]))
        return raw.decode("utf-8", errors="replace").strip()

    def _word(self, piece: str) -> tuple[int, ...]:
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        symbols = "".join(self._symbols[b] for b in piece.encode("utf-8"))
        ids = tuple(self.vocab[part] for part in self._merge(symbols))
        if len(piece) <= CACHED_PIECE_LENGTH:  # a prompt of huge unique words must not fill memory
            with self._lock:
                if len(self._cache) > 100_000:  # nor a pathological stream of unique short ones
                    self._cache.clear()
                self._cache[piece] = ids
        return ids

    def _merge(self, symbols: str) -> list[str]:
        """CLIP's BPE: merge the best-ranked neighbour pair everywhere (left to right), until none is known.

        Same result as the reference loop (which rescans the whole word after each merge: quadratic, a minute
        for a 16,000-letter word) in O(n log n): the pairs wait in a heap by (rank, position) and the symbols
        form a linked list. One rank is merged as a round and the pairs it makes wait for the next round, as the
        reference finds the next best pair only after a whole pass."""
        parts = [*symbols[:-1], symbols[-1] + "</w>"]
        after = list(range(1, len(parts) + 1))  # index of the next live symbol; len(parts): none
        before = list(range(-1, len(parts) - 1))
        heap = [(rank, i) for i in range(len(parts) - 1) if (rank := self.ranks.get((parts[i], parts[i + 1])))
                is not None]
        heapq.heapify(heap)
        while heap:
            rank, made = heap[0][0], []
            while heap and heap[0][0] == rank:
                _, i = heapq.heappop(heap)
                j = after[i] if parts[i] else len(parts)
                if j == len(parts) or self.ranks.get((parts[i], parts[j])) != rank:
                    continue  # i was merged into its left neighbour, or its pair changed since it was queued
                parts[i], parts[j] = parts[i] + parts[j], ""
                after[i] = after[j]
                if after[i] < len(parts):
                    before[after[i]] = i
                made += [before[i], i]
            for k in made:  # each symbol whose right-hand pair changed in this round, if it still has one
                if k >= 0 and parts[k] and after[k] < len(parts) \
                        and (new := self.ranks.get((parts[k], parts[after[k]]))) is not None:
                    heapq.heappush(heap, (new, k))
        return [part for part in parts if part]


@functools.lru_cache(maxsize=1)
def bundled() -> ClipTokenizer:
    """The CLIP tokenizer built from the vocabulary shipped with this package (loaded once)."""
    with resources.as_file(resources.files("sd_embeddings") / "data" / _VOCAB_FILE) as path:
        return ClipTokenizer.from_bpe_file(path)


def for_model(model: str | os.PathLike | None) -> Tokenizer:
    """A local model folder's tokenizer (``tokenizer/`` or the folder itself) if it has one, else the bundled one."""
    if model is not None:
        base = Path(model)
        for folder in (base / "tokenizer", base):
            if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
                return ClipTokenizer.from_folder(folder)
    return bundled()


class TransformersTokenizer:
    """Adapts a transformers ``CLIPTokenizer``/``CLIPTokenizerFast`` (e.g. the WebUI model's) to :class:`Tokenizer`."""

    def __init__(self, hf_tokenizer: Any, pad_id: int | None = None) -> None:
        self.hf = hf_tokenizer
        self.bos_id = int(hf_tokenizer.bos_token_id)
        self.eos_id = int(hf_tokenizer.eos_token_id)
        self.pad_id = self.eos_id if pad_id is None else pad_id
        self.comma_id = int(hf_tokenizer.get_vocab()[",</w>"])

    def encode(self, text: str) -> list[int]:
        return list(self.hf(text, truncation=False, add_special_tokens=False)["input_ids"])
