"""The Forge2 backend half of the fake Forge (see ``forge_fakes``): the CLIP engine, its tokenizer, its stock
database and its token-embedding module, mirroring Forge ``main`` dfdcbab6 ``backend/text_processing/classic_engine.py``
and ``textual_inversion.py``, and Neo (Haoming02/sd-webui-forge-classic ``neo`` 21886f41) ``sd_engine.py``, whose
engine writes ``backend.args.dynamic_args.last_extra_generation_params`` instead of a module-level dict.
"""

from __future__ import annotations

import sys
import types
from collections import namedtuple

import torch

COMMA, BOS, EOS, VOCABULARY = 267, 49406, 49407, 49408
WORDS: dict[str, int] = {",": COMMA}
PromptChunkFix = namedtuple("PromptChunkFix", ["offset", "embedding"])
LAYOUTS = {"forge": ("backend.text_processing.classic_engine", "ClassicTextProcessingEngine"),
           "neo": ("backend.text_processing.sd_engine", "ClipEngine")}
torch_loads: list[str] = []
"""Every file a stock database "loaded" (Forge: ``torch.load`` / ``safetensors.load_file`` on it)."""


def word_id(word: str) -> int:
    return WORDS.setdefault(word.lower(), 1000 + len(WORDS))


class Tokenizer:
    """``CLIPTokenizer``'s call as Forge uses it: ``tokenizer(texts, truncation=False, add_special_tokens=False)``."""

    bos_token_id, eos_token_id, pad_token_id = BOS, EOS, EOS

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, texts, truncation=True, add_special_tokens=True):
        self.calls += 1
        ids = [[word_id(w) for w in t.replace(",", " , ").split()] for t in texts]
        return {"input_ids": [[BOS, *i, EOS] if add_special_tokens else i for i in ids]}


class StockEngineDatabase:
    """Forge's per-engine ``EmbeddingDatabase``: attributes, and a load that walks its folders (recorded)."""

    def __init__(self, tokenizer, expected_shape=-1):
        self.tokenizer, self.expected_shape = tokenizer, expected_shape
        self.ids_lookup, self.word_embeddings, self.skipped_embeddings, self.embedding_dirs = {}, {}, {}, {}
        self.fixes = []

    def add_embedding_dir(self, path):
        self.embedding_dirs[path] = path

    def load_textual_inversion_embeddings(self):
        import os

        for path in self.embedding_dirs:
            for root, _dirs, names in os.walk(path):
                torch_loads.extend(os.path.join(root, name) for name in names)

    def find_embedding_at_position(self, tokens, offset):
        return None, None


class TokenEmbedding(torch.nn.Module):
    """``CLIPEmbeddingForTextualInversion.forward``: the wrapped rows with each fix's vectors (a dict: its key)."""

    def __init__(self, wrapped, embeddings, key):
        super().__init__()
        self.wrapped, self.embeddings, self.textual_inversion_key = wrapped, embeddings, key

    def forward(self, input_ids):
        batch_fixes, self.embeddings.fixes = self.embeddings.fixes, None
        rows = self.wrapped(input_ids)
        if not batch_fixes or max(len(x) for x in batch_fixes) == 0:
            return rows
        out = []
        for fixes, tensor in zip(batch_fixes, rows):
            for offset, embedding in fixes:
                vec = embedding.vec[self.textual_inversion_key] if isinstance(embedding.vec, dict) else embedding.vec
                n = min(tensor.shape[0] - offset - 1, vec.shape[0])
                tensor = torch.cat([tensor[:offset + 1], vec[:n].to(tensor), tensor[offset + 1 + n:]])
            out.append(tensor)
        return torch.stack(out)


class PromptChunk:
    def __init__(self):
        self.tokens, self.multipliers, self.fixes = [], [], []


class Engine:
    """The CLIP engine: construction (database from the module namespace, token embedding wrapped), ``tokenize``,
    ``tokenize_line`` (Forge's algorithm, backtrack 20 and its bug), ``process_texts`` and ``__call__``."""

    chunk_length, id_start, id_end, comma_token, backtrack = 75, BOS, EOS, COMMA, 20
    module_name = ""

    def __init__(self, tokenizer, width, key, embedding_dir, expected_shape):
        module = sys.modules[self.module_name]
        self.embeddings = module.EmbeddingDatabase(tokenizer, expected_shape)
        if isinstance(embedding_dir, str):
            self.embeddings.add_embedding_dir(embedding_dir)
            self.embeddings.load_textual_inversion_embeddings()
        self.tokenizer, self.embedding_key = tokenizer, key
        # CLIP's vocabulary of zero rows, one row in memory (stride 0), as Forge's wrapped ``nn.Embedding``
        base = torch.nn.Embedding.from_pretrained(torch.zeros(1, width).expand(VOCABULARY, width))
        self.text_encoder = types.SimpleNamespace(transformer=types.SimpleNamespace(text_model=types.SimpleNamespace(
            embeddings=types.SimpleNamespace(token_embedding=TokenEmbedding(base, self.embeddings, key)))))
        self.calls: list[list[str]] = []

    def tokenize(self, texts):
        return self.tokenizer(texts, truncation=False, add_special_tokens=False)["input_ids"]

    def tokenize_line(self, line):
        chunks, chunk, last_comma = [], PromptChunk(), -1

        def close():
            nonlocal chunk, last_comma
            pad = self.chunk_length - len(chunk.tokens)
            chunk.tokens = [self.id_start] + chunk.tokens + [self.id_end] * pad + [self.id_end]
            chunk.multipliers = [1.0] * len(chunk.tokens)
            chunks.append(chunk)
            chunk, last_comma = PromptChunk(), -1

        tokens, position = self.tokenize([line])[0], 0
        while position < len(tokens):
            if tokens[position] == self.comma_token:
                last_comma = len(chunk.tokens)
            elif len(chunk.tokens) == self.chunk_length and last_comma != -1 and \
                    len(chunk.tokens) - last_comma <= self.backtrack:
                moved = chunk.tokens[last_comma + 1:]
                chunk.tokens = chunk.tokens[:last_comma + 1]
                close()
                chunk.tokens = moved
            if len(chunk.tokens) == self.chunk_length:
                close()
            embedding, used = self.embeddings.find_embedding_at_position(tokens, position)
            if embedding is None:
                chunk.tokens.append(tokens[position])
                position += 1
                continue
            if len(chunk.tokens) + int(embedding.vectors) > self.chunk_length:
                close()
            chunk.fixes.append(PromptChunkFix(len(chunk.tokens), embedding))
            chunk.tokens += [0] * int(embedding.vectors)
            position += used
        if chunk.tokens or not chunks:
            close()
        return chunks, 0

    def process_texts(self, texts):
        cache = {}
        for line in texts:
            if line not in cache:
                cache[line] = self.tokenize_line(line)[0]
        return [cache[line] for line in texts], 0

    def __call__(self, texts):
        self.calls.append(list(texts))
        batch_chunks, _ = self.process_texts(texts)
        used, zs = {}, []
        for i in range(max(len(c) for c in batch_chunks)):
            batch = [chunks[i] for chunks in batch_chunks]
            self.embeddings.fixes = [c.fixes for c in batch]
            for fixes in self.embeddings.fixes:
                for _offset, embedding in fixes:
                    used[embedding.name] = embedding
            zs.append(self.text_encoder.transformer.text_model.embeddings.token_embedding(
                torch.tensor([c.tokens for c in batch])))
        if used:
            params = last_params()
            names = ", ".join(name.replace(":", "").replace(",", "") for name in used)
            params["TI"] = f"{params['TI']}, {names}" if "TI" in params else names
        return torch.hstack(zs)


def last_params() -> dict:
    """Where the engine writes: Forge's module-level dict, Neo's ``dynamic_args`` attribute."""
    args = sys.modules.get("backend.args")
    if args is not None:
        return args.dynamic_args.last_extra_generation_params
    return sys.modules[LAYOUTS["forge"][0]].last_extra_generation_params


def take_last_params() -> dict:
    args = sys.modules.get("backend.args")
    if args is not None:
        params = dict(args.dynamic_args.last_extra_generation_params)
        args.dynamic_args.last_extra_generation_params.clear()
        return params
    module = sys.modules[LAYOUTS["forge"][0]]
    params, module.last_extra_generation_params = module.last_extra_generation_params.copy(), {}
    return params
