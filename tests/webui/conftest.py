"""A minimal, strict fake of the WebUI's ``modules`` package for the adapter's unit tests.

Each fake module is a ``types.ModuleType`` holding only the attributes the adapter uses (no catch-all mocks), so a
new, unexpected dependency fails with ``AttributeError``. The fake model tokenizes on whitespace and commas with a
fixed vocabulary; its ``tokenize_line`` follows the WebUI's algorithm described in ``reference/a1111.md`` §4.3,
including the comma-backtrack behaviour the adapter fixes; ``processing``'s ``setup_conds`` goes through
``cached_params`` and the class-level conditioning caches to the model's ``forward`` (``process_texts`` ->
``tokenize_line`` -> ``tokenize``, each call's texts kept in ``calls``), which writes ``TI hashes`` into
``model_hijack.extra_generation_params`` with the WebUI's repetition (a1111.md §5.1). The real WebUI must not be
importable here.

Two layouts, and every test using ``webui`` runs on both (``layout``): ``1.10`` (A1111 1.10: ``tokenize_line`` on
``sd_hijack_clip.TextConditionalModel``, callbacks take ``name=``) and ``1.7-1.9`` (A1111 1.7-1.8 and Forge Classic
1f95d71 as read from their source: no ``TextConditionalModel``, ``tokenize_line`` defined on
``FrozenCLIPEmbedderWithCustomWordsBase``, ``script_callbacks.on_*(callback)`` without ``name``; 1.9 has the name).
"""

from __future__ import annotations

import sys
import types
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
import torch

COMMA = 267
WORDS: dict[str, int] = {",": COMMA}


def word_id(word: str) -> int:
    return WORDS.setdefault(word.lower(), 1000 + len(WORDS))


def tokenize_text(text: str) -> list[int]:
    return [word_id(w) for w in text.replace(",", " , ").split()]


@dataclass
class PromptChunk:
    tokens: list = field(default_factory=list)
    multipliers: list = field(default_factory=list)
    fixes: list = field(default_factory=list)


@dataclass
class PromptChunkFix:
    offset: int
    embedding: object


class FakeCondModel:
    """Stands in for ``FrozenCLIPEmbedderWithCustomWords``: ``tokenize``, ``encode_embedding_init_text``, chunking."""

    chunk_length, id_start, id_end, comma_token = 75, 49406, 49407, COMMA

    def __init__(self, width: int, hijack: object) -> None:
        self.width = width
        self.hijack = hijack
        self.calls: list[list[str]] = []
        """Every ``tokenize`` call's texts, so tests can count tokenizations."""

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        self.calls.append(list(texts))
        return [tokenize_text(t) for t in texts]

    def encode_embedding_init_text(self, text: str, nvpt: int) -> torch.Tensor:
        return torch.zeros(nvpt, self.width)


class TextConditionalModel:
    """``tokenize_line`` following the WebUI's algorithm (a1111.md §4.3, the comma-backtrack bug included),
    ``process_texts`` (one ``tokenize_line`` per distinct line of a call) and ``forward`` minus the transformer: it
    writes ``TI hashes`` from the chunks' fixes into the hijack as the WebUI does (a1111.md §5.1): this call's items
    first, then the old value, so the same pair repeats across prompts; nothing when the setting is off."""

    backtrack = 20

    def tokenize_line(self, line: str):
        chunks, chunk, last_comma = [], PromptChunk(), -1

        def close() -> None:
            nonlocal chunk, last_comma
            pad = self.chunk_length - len(chunk.tokens)
            chunk.tokens = [self.id_start] + chunk.tokens + [self.id_end] * pad + [self.id_end]
            chunk.multipliers = [1.0] + chunk.multipliers + [1.0] * pad + [1.0]
            chunks.append(chunk)
            chunk, last_comma = PromptChunk(), -1

        tokens, position = self.tokenize([line])[0], 0
        while position < len(tokens):
            if tokens[position] == self.comma_token:
                last_comma = len(chunk.tokens)
            elif len(chunk.tokens) == self.chunk_length and last_comma != -1 and \
                    self.chunk_length - last_comma <= self.backtrack:
                moved = chunk.tokens[last_comma + 1:], chunk.multipliers[last_comma + 1:]
                del chunk.tokens[last_comma + 1:], chunk.multipliers[last_comma + 1:]
                close()
                chunk.tokens, chunk.multipliers = list(moved[0]), list(moved[1])
            if len(chunk.tokens) == self.chunk_length:
                close()
            embedding, used = self.hijack.embedding_db.find_embedding_at_position(tokens, position)
            if embedding is None:
                chunk.tokens.append(tokens[position])
                chunk.multipliers.append(1.0)
                position += 1
                continue
            if len(chunk.tokens) + embedding.vectors > self.chunk_length:
                close()
            chunk.fixes.append(PromptChunkFix(len(chunk.tokens), embedding))
            chunk.tokens += [0] * embedding.vectors
            chunk.multipliers += [1.0] * embedding.vectors
            position += used
        if chunk.tokens or not chunks:
            close()
        return chunks, 0

    def process_texts(self, texts):
        cache: dict = {}
        for line in texts:
            if line not in cache:
                cache[line] = self.tokenize_line(line)[0]
        return [cache[line] for line in texts], 0

    def forward(self, texts):
        batch_chunks, _ = self.process_texts(texts)
        used = {fix.embedding.name: fix.embedding for chunks in batch_chunks for chunk in chunks for fix in chunk.fixes}
        hashes = [f"{name}: {embedding.shorthash}" for name, embedding in used.items() if embedding.shorthash]
        if sys.modules["modules.shared"].opts.textual_inversion_add_hashes_to_infotext and hashes:
            old = self.hijack.extra_generation_params.get("TI hashes")
            self.hijack.extra_generation_params["TI hashes"] = ", ".join([*hashes, *([old] if old else [])])
        return batch_chunks


class FakeCond(FakeCondModel, TextConditionalModel):
    pass


# 1.7-1.9 / Forge Classic: the same prompt-path methods, defined on the older base class
FrozenCLIPEmbedderWithCustomWordsBase = type("FrozenCLIPEmbedderWithCustomWordsBase", (), {
    k: v for k, v in vars(TextConditionalModel).items() if k not in ("__dict__", "__weakref__", "__qualname__")})
OldFakeCond = type("FakeCond", (FakeCondModel, FrozenCLIPEmbedderWithCustomWordsBase), {})
LAYOUTS = {"1.10": ("TextConditionalModel", TextConditionalModel, FakeCond, True),
           "1.7-1.9": ("FrozenCLIPEmbedderWithCustomWordsBase", FrozenCLIPEmbedderWithCustomWordsBase, OldFakeCond,
                       False)}


class Embedding:
    """The attributes the WebUI's ``Embedding.__init__`` sets, ``set_hash`` and ``checksum`` (a1111.md §1.1)."""

    def __init__(self, vec, name, step=None):
        self.vec, self.name, self.step = vec, name, step
        self.shape, self.vectors, self.cached_checksum = None, 0, None
        self.sd_checkpoint = self.sd_checkpoint_name = self.optimizer_state_dict = None
        self.filename = self.hash = self.shorthash = None

    def set_hash(self, v):
        self.hash, self.shorthash = v, v[0:12]


class StableDiffusionProcessing:
    """``cached_params``, ``get_conds_with_caching`` (the class-level one-entry caches, keys compared with ``==``)
    and ``setup_conds``, which encodes ``negative_prompts`` then ``prompts`` through the model's ``forward``, one call
    per distinct prompt as ``prompt_parser.get_learned_conditioning`` makes for prompts without schedules."""

    cached_uc: list = [None, None]
    cached_c: list = [None, None]
    steps = 20

    def cached_params(self, required_prompts, steps):
        return (tuple(required_prompts), steps)

    def get_conds_with_caching(self, required_prompts, steps, cache):
        key = self.cached_params(required_prompts, steps)
        if cache[0] is not None and key == cache[0]:
            return cache[1]
        model = sys.modules["modules.shared"].sd_model.cond_stage_model
        cache[1] = [model.forward([text]) for text in dict.fromkeys(required_prompts)]
        cache[0] = key
        return cache[1]

    def setup_conds(self):
        self.uc = self.get_conds_with_caching(self.negative_prompts, self.steps, self.cached_uc)
        self.c = self.get_conds_with_caching(self.prompts, self.steps, self.cached_c)


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    """Overrides ``setup_conds`` as the WebUI's does: ``super()`` first, then the hires prompts' conditioning."""

    cached_hr_uc: list = [None, None]
    cached_hr_c: list = [None, None]

    def setup_conds(self):
        super().setup_conds()
        self.hr_uc = self.get_conds_with_caching(self.hr_negative_prompts, self.steps, self.cached_hr_uc)
        self.hr_c = self.get_conds_with_caching(self.hr_prompts, self.steps, self.cached_hr_c)


class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    """Does not override ``setup_conds`` (as in the WebUI)."""


class ExtraNetworksPage:
    def __init__(self, title):
        self.title, self.name = title, title.lower()
        self.extra_networks_tabname = self.name.replace(" ", "_")
        self.allow_negative_prompt = False
        self.items = {}


def _recorder(into: list, named: bool):
    def on(callback, *, name=None):
        into.append(callback)

    def on_unnamed(callback):
        into.append(callback)

    return on if named else on_unnamed


@pytest.fixture(params=list(LAYOUTS))
def layout(request) -> str:
    return request.param


def _module(name: str, **attrs: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


@pytest.fixture
def webui(tmp_path, monkeypatch, layout):
    """Install the fake ``modules`` package in ``layout``; returns a namespace with the pieces tests poke at."""
    owner_name, line_owner, cond_class, named = LAYOUTS[layout]
    assert "modules" not in sys.modules or getattr(sys.modules["modules"], "__fake__", False), \
        "the real WebUI is importable; these tests must run against the fake"
    originals: dict = defaultdict(dict)

    def patch(key, obj, name, replacement):
        if (obj, name) in originals[key]:
            raise RuntimeError(f"patch for {name} is already applied")
        originals[key][(obj, name)] = getattr(obj, name)
        setattr(obj, name, replacement)

    def undo(key, obj, name):
        setattr(obj, name, originals[key].pop((obj, name)))

    callbacks: dict[str, list] = defaultdict(list)
    hijack = types.SimpleNamespace(embedding_db=types.SimpleNamespace(embedding_dirs={}), extra_generation_params={})
    pages: list = []
    fake = {
        "modules": _module("modules", __fake__=True, __path__=[]),
        "modules.shared": _module("modules.shared", opts=types.SimpleNamespace(
            data={}, sd_model_checkpoint=None, textual_inversion_print_at_load=False,
            textual_inversion_add_hashes_to_infotext=True, samples_format="png"),
            cmd_opts=types.SimpleNamespace(embeddings_dir=str(tmp_path / "embeddings"), no_hashing=False,
                                           loglevel="INFO"),
            sd_model=None),  # ``--loglevel`` given: the WebUI owns logging (pytest's caplog stands in for it)
        "modules.devices": _module("modules.devices", device=torch.device("cpu")),
        "modules.sd_models": _module("modules.sd_models", model_data=types.SimpleNamespace(sd_model=None),
                                     checkpoint_aliases={}, checkpoints_list={}),
        "modules.paths": _module("modules.paths", data_path=str(tmp_path / "data")),
        "modules.textual_inversion": _module("modules.textual_inversion", __path__=[]),
        "modules.textual_inversion.textual_inversion": _module(
            "modules.textual_inversion.textual_inversion", Embedding=Embedding),
        "modules.sd_hijack": _module("modules.sd_hijack", model_hijack=hijack),
        "modules.sd_hijack_clip": _module("modules.sd_hijack_clip", **{owner_name: line_owner},
                                          PromptChunkFix=PromptChunkFix),
        "modules.processing": _module("modules.processing", StableDiffusionProcessing=StableDiffusionProcessing,
                                      StableDiffusionProcessingTxt2Img=StableDiffusionProcessingTxt2Img,
                                      StableDiffusionProcessingImg2Img=StableDiffusionProcessingImg2Img),
        "modules.patches": _module("modules.patches", patch=patch, undo=undo,
                                   original=lambda key, obj, name: originals[key].get((obj, name))),
        "modules.script_callbacks": _module("modules.script_callbacks", **{
            f"on_{kind}": _recorder(callbacks[kind], named) for kind in (
                "ui_settings", "before_ui", "app_started", "infotext_pasted", "model_loaded", "script_unloaded")}),
        "modules.ui_extra_networks": _module(
            "modules.ui_extra_networks", extra_pages=pages, ExtraNetworksPage=ExtraNetworksPage,
            register_page=pages.append, quote_js=lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    }
    for owner, name in ((StableDiffusionProcessing, "cached_uc"), (StableDiffusionProcessing, "cached_c"),
                        (StableDiffusionProcessingTxt2Img, "cached_hr_uc"),
                        (StableDiffusionProcessingTxt2Img, "cached_hr_c")):
        monkeypatch.setattr(owner, name, [None, None])  # the WebUI's class-level caches, fresh per test
    for name, module in fake.items():
        monkeypatch.setitem(sys.modules, name, module)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(fake[parent], child, module)

    def load_model(width: int = 768) -> object:
        model = types.SimpleNamespace(cond_stage_model=cond_class(width, hijack))
        fake["modules.sd_models"].model_data.sd_model = model
        fake["modules.shared"].sd_model = model
        return model

    def make_db(watcher: object = None) -> object:
        """A ``LibraryDatabase`` over the test folder (no background hashing), installed as the hijack's db."""
        from sd_embeddings.library import Library
        from sd_embeddings.webui.database import LibraryDatabase

        db = LibraryDatabase(Library([], background_hashing=False), watcher)
        db.add_embedding_dir(str(tmp_path / "embeddings"))
        hijack.embedding_db = db
        return db

    (tmp_path / "embeddings").mkdir()
    yield types.SimpleNamespace(modules=fake, hijack=hijack, callbacks=callbacks, pages=pages, load_model=load_model,
                                make_db=make_db, folder=tmp_path / "embeddings", opts=fake["modules.shared"].opts,
                                layout=layout, line_owner=line_owner)
