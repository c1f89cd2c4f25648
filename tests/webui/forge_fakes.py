"""A strict fake of the Forge2 WebUI surface (lllyasviel's Forge ``main`` and Forge Neo) for the forge2 adapter's tests.

Mirrors, from reading the real sources (never copied): Forge ``main`` at dfdcbab6 (2025-06-26):
``backend/text_processing/classic_engine.py`` (``ClassicTextProcessingEngine``: builds ``EmbeddingDatabase(tokenizer,
expected_shape)`` from its module's namespace and loads it, wraps the text encoder's token embedding in
``CLIPEmbeddingForTextualInversion`` which takes the database's ``fixes``; ``tokenize_line`` with the comma backtrack
hard-coded to 20 and its left-behind-fix bug; ``__call__`` appends the used names to the module-level
``last_extra_generation_params["TI"]``), ``backend/text_processing/textual_inversion.py`` (the per-engine database:
it "loads" a file with ``torch.load``, here recorded in ``torch_loads`` instead), ``modules/processing.py``
(``get_conds_with_caching`` with three-slot caches: the engine's parameters go into ``sd_model.extra_generation_params``
and ``cache[2]``, a cache hit refills them from ``cache[2]``; txt2img's ``setup_conds`` after ``super()``),
``modules/sd_models.py`` (``model_data.sd_model``, ``FakeInitialModel`` before the first load,
``model_data.forge_loading_parameters`` (``{}`` until the UI picks a checkpoint), ``checkpoint_aliases``,
``checkpoints_list``), ``modules/sd_hijack.py``
(a stub: no ``embedding_db``), ``backend/diffusion_engine/sd15.py``/``sdxl.py`` (engines ``text_processing_engine`` or
``_l``+``_g``). Neo at Haoming02/sd-webui-forge-classic ``neo`` 21886f41: the engine is ``ClipEngine`` in
``sd_engine.py`` and writes ``dynamic_args.last_extra_generation_params`` (``backend/args.py``).

Each fake module holds only what the adapter or these tests use (``types.ModuleType``, no catch-all mocks). The
tokenizer splits on whitespace and commas over a growing vocabulary (ids from 1000; ``,`` is 267; BOS/EOS 49406/49407).
The real Forge must not be importable here.
"""

from __future__ import annotations

import sys
import types
from collections import defaultdict

import pytest
import torch
from forge_backend_fakes import (
    LAYOUTS,
    Engine,
    PromptChunkFix,
    StockEngineDatabase,
    Tokenizer,
    take_last_params,
    torch_loads,
)


class StableDiffusionProcessing:
    """``cached_params``, ``get_conds_with_caching`` (three-slot class-level caches), ``setup_conds``."""

    cached_uc: list = [None, None, None]
    cached_c: list = [None, None, None]
    steps = 1

    def cached_params(self, required_prompts, steps, extra_network_data, hires_steps=None, use_old_scheduling=False):
        return (tuple(required_prompts), steps, extra_network_data, hires_steps, use_old_scheduling)

    def get_conds_with_caching(self, required_prompts, steps, caches):
        model = sys.modules["modules.shared"].sd_model
        key = self.cached_params(required_prompts, steps, None, None, False)
        for cache in caches:
            if cache[0] is not None and key == cache[0]:
                model.extra_generation_params.update(cache[2])
                return cache[1]
        cache = caches[0]
        cache[1] = model.get_learned_conditioning(list(required_prompts))
        cache[2] = take_last_params()
        model.extra_generation_params.update(cache[2])
        cache[0] = key
        return cache[1]

    def setup_conds(self):
        self.uc = self.get_conds_with_caching(self.negative_prompts, self.steps, [self.cached_uc])
        self.c = self.get_conds_with_caching(self.prompts, self.steps, [self.cached_c])


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    cached_hr_uc: list = [None, None, None]
    cached_hr_c: list = [None, None, None]

    def setup_conds(self):
        super().setup_conds()
        self.hr_uc = self.get_conds_with_caching(self.hr_negative_prompts, self.steps, [self.cached_hr_uc])
        self.hr_c = self.get_conds_with_caching(self.hr_prompts, self.steps, [self.cached_hr_c])


class FakeInitialModel:
    """``sd_models.FakeInitialModel``: what ``model_data.sd_model`` is before Forge loads a checkpoint."""

    cond_stage_model = None


class Model:
    """A loaded Forge model: ``cond_stage_model`` None, engines by attribute, ``get_learned_conditioning``."""

    def __init__(self, kind: str, folder: str) -> None:
        engine = sys.modules["modules.sd_models"].engine_class
        self.cond_stage_model, self.extra_generation_params = None, {}
        if kind == "sdxl":
            self.text_processing_engine_l = engine(Tokenizer(), 768, "clip_l", folder, 2048)
            self.text_processing_engine_g = engine(Tokenizer(), 1280, "clip_g", folder, 2048)
        else:
            width = {"sd1": 768, "sd2": 1024}[kind]
            self.text_processing_engine = engine(Tokenizer(), width, "clip_l", folder, width)

    def engines(self) -> list:
        return [value for name, value in sorted(vars(self).items()) if name.startswith("text_processing_engine")]

    def get_learned_conditioning(self, prompts):
        if hasattr(self, "text_processing_engine"):
            return self.text_processing_engine(prompts)
        return torch.cat([self.text_processing_engine_l(prompts), self.text_processing_engine_g(prompts)], dim=-1)


class Embedding:
    """``modules.textual_inversion.textual_inversion.Embedding`` (the A1111 class Forge keeps)."""

    def __init__(self, vec, name, step=None):
        self.vec, self.name, self.step = vec, name, step
        self.shape, self.vectors, self.cached_checksum = None, 0, None
        self.sd_checkpoint = self.sd_checkpoint_name = self.optimizer_state_dict = None
        self.filename = self.hash = self.shorthash = None


class TabEmbeddingDatabase:
    """The A1111-style database Forge's tab module and API each build and load at start."""

    def __init__(self):
        self.word_embeddings, self.skipped_embeddings, self.embedding_dirs = {}, {}, {}

    def add_embedding_dir(self, path):
        self.embedding_dirs[path] = path

    def load_textual_inversion_embeddings(self, force_reload=False, sync_with_sd_model=True):
        StockEngineDatabase.load_textual_inversion_embeddings(self)


def _module(name: str, **attrs: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def _patches(originals: dict) -> types.ModuleType:
    def patch(key, obj, name, replacement):
        if (obj, name) in originals[key]:
            raise RuntimeError(f"patch for {name} is already applied")
        originals[key][(obj, name)] = getattr(obj, name)
        setattr(obj, name, replacement)

    def undo(key, obj, name):
        setattr(obj, name, originals[key].pop((obj, name)))

    return _module("modules.patches", patch=patch, undo=undo,
                   original=lambda key, obj, name: originals[key].get((obj, name)))


def fake_modules(layout: str, folder: str, data: str, callbacks: dict, pages: list) -> dict[str, types.ModuleType]:
    engine_module, engine_name = LAYOUTS[layout]
    # Forge's engine class defines ``tokenize_line`` itself (what the probe looks for and the patch replaces)
    engine = type(engine_name, (Engine,), {"module_name": engine_module, "tokenize_line": Engine.tokenize_line,
                                           "__module__": engine_module})
    backend = {"backend": _module("backend", __path__=[]),
               "backend.text_processing": _module("backend.text_processing", __path__=[]),
               engine_module: _module(engine_module, **{engine_name: engine}, EmbeddingDatabase=StockEngineDatabase,
                                      PromptChunkFix=PromptChunkFix, last_extra_generation_params={})}
    if layout == "neo":
        backend["backend.args"] = _module("backend.args", dynamic_args=types.SimpleNamespace(
            last_extra_generation_params={}, embedding_dir=folder))
    on = {f"on_{kind}": (lambda into: lambda callback, *, name=None: into.append(callback))(callbacks[kind])
          for kind in ("ui_settings", "before_ui", "app_started", "infotext_pasted", "model_loaded",
                       "script_unloaded")}
    modules = {
        "modules": _module("modules", __fake__=True, __path__=[]),
        "modules.shared": _module("modules.shared", opts=types.SimpleNamespace(
            data={"sd_embeddings_watch": False}, textual_inversion_print_at_load=False,
            textual_inversion_add_hashes_to_infotext=True, samples_format="png"),
            cmd_opts=types.SimpleNamespace(embeddings_dir=folder, no_hashing=False, loglevel="INFO"),
            sd_model=None),  # ``--loglevel`` given: the WebUI owns logging (pytest's caplog stands in for it)
        "modules.devices": _module("modules.devices", device=torch.device("cpu")),
        "modules.sd_models": _module("modules.sd_models", model_data=types.SimpleNamespace(
            sd_model=FakeInitialModel(), forge_loading_parameters={}), engine_class=engine,
            checkpoint_aliases={}, checkpoints_list={}),
        "modules.paths": _module("modules.paths", data_path=data),
        "modules.sd_hijack": _module("modules.sd_hijack", model_hijack=types.SimpleNamespace()),
        "modules.textual_inversion": _module("modules.textual_inversion", __path__=[]),
        "modules.textual_inversion.textual_inversion": _module(
            "modules.textual_inversion.textual_inversion", Embedding=Embedding, EmbeddingDatabase=TabEmbeddingDatabase),
        "modules.processing": _module("modules.processing", StableDiffusionProcessing=StableDiffusionProcessing,
                                      StableDiffusionProcessingTxt2Img=StableDiffusionProcessingTxt2Img),
        "modules.patches": _patches(defaultdict(dict)),
        "modules.script_callbacks": _module("modules.script_callbacks", **on),
        "modules.ui_extra_networks": _module("modules.ui_extra_networks", extra_pages=pages,
                                             register_page=pages.append),
    }
    return {**backend, **modules}


@pytest.fixture(params=sorted(LAYOUTS))
def forge(request, tmp_path, monkeypatch):
    """Install the fake Forge (``forge`` or ``neo`` layout); returns the pieces tests use."""
    assert "modules" not in sys.modules or getattr(sys.modules["modules"], "__fake__", False), \
        "the real WebUI is importable; these tests must run against the fake"
    folder = tmp_path / "embeddings"
    folder.mkdir()
    callbacks: dict[str, list] = defaultdict(list)
    pages: list = []
    fake = fake_modules(request.param, str(folder), str(tmp_path / "data"), callbacks, pages)
    for owner, name in ((StableDiffusionProcessing, "cached_uc"), (StableDiffusionProcessing, "cached_c"),
                        (StableDiffusionProcessingTxt2Img, "cached_hr_uc"),
                        (StableDiffusionProcessingTxt2Img, "cached_hr_c")):
        monkeypatch.setattr(owner, name, [None, None, None])
    for name, module in fake.items():
        monkeypatch.setitem(sys.modules, name, module)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(fake[parent], child, module)
    torch_loads.clear()

    def load_model(kind: str = "sd1") -> Model:
        """``forge_model_reload``: a new model (engines built now), set in ``model_data``, callbacks run."""
        fake["modules.sd_models"].model_data.sd_model = None
        model = Model(kind, str(folder))
        fake["modules.sd_models"].model_data.sd_model = model
        fake["modules.shared"].sd_model = model
        for callback in callbacks["model_loaded"]:
            callback(model)
        return model

    engine_module = fake[LAYOUTS[request.param][0]]
    yield types.SimpleNamespace(modules=fake, layout=request.param, folder=folder, callbacks=callbacks, pages=pages,
                                load_model=load_model, engine_module=engine_module,
                                engine_class=getattr(engine_module, LAYOUTS[request.param][1]),
                                hijack=fake["modules.sd_hijack"].model_hijack, opts=fake["modules.shared"].opts)
