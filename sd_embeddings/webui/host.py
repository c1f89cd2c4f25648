"""The seam between the adapter and a WebUI: everything ``webui/`` needs from the WebUI's code goes through a ``Host``.

A host says whether it fits the running WebUI by probing the classes and functions it would use (never version
numbers), and then does the few WebUI-specific things: swap the embedding database in and out, give the model and
its tokenizer, the ``Embedding`` base class and the chunk-fix type, write a generation parameter, and name the
functions to wrap. ``a1111.A1111Host`` (AUTOMATIC1111 1.7-1.10 and the forks that keep its prompt path) and
``forge2.Forge2Host`` (Forge main and Forge Neo: one database per text-processing engine in ``backend/``) are the two;
``choose`` picks the first that fits and says so in one line.

Two optional attributes describe what a WebUI does by itself (absent = A1111's behaviour):
``webui_reloads_embeddings`` (False: nothing reloads the database before a generation, the adapter does) and
``names_param`` (an infotext key the WebUI fills with the embeddings' names, rewritten once per embedding).

What every WebUI of the family shares is used directly, not through a host: ``modules.shared.opts`` (settings),
``modules.script_callbacks`` (through ``on``, which papers over its one signature change), ``modules.patches`` and
the extra-networks page machinery.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

Wrap = Callable[[Callable], Callable]
Patch = tuple[Any, str, Wrap]
"""``(owner, attribute, wrap)``: ``owner.attribute`` is replaced by ``wrap(original)`` until unload."""
LOG_PREFIX = "Textual inversion (sd-embeddings): "


@dataclass(frozen=True)
class Hooks:
    """What the adapter wraps around the WebUI's prompt path; a host maps each onto its own functions."""

    tokenize_line: Wrap
    cached_params: Wrap
    setup_conds: Wrap


@dataclass(frozen=True)
class Probe:
    fits: bool
    detail: str
    """What was found (``fits``) or what was looked for and is missing."""


class Host(Protocol):
    name: str

    def probe(self) -> Probe: ...

    def patch_targets(self, hooks: Hooks) -> list[Patch]: ...

    def install_database(self, db: Any) -> Any:
        """Make ``db`` the WebUI's embedding database; returns the one it replaced."""

    def uninstall_database(self, db: Any, original: Any) -> None: ...

    def webui_embedding_dirs(self) -> list[str]:
        """The folders the WebUI's own database scans (``--embeddings-dir`` and any an extension added)."""

    def embeddings_dir(self) -> str:
        """``--embeddings-dir``."""

    def data_dir(self) -> str:
        """Where the WebUI keeps its caches (``--data-dir``)."""

    def current_model(self) -> Any | None:
        """The active model, without triggering a load; ``None`` before one is there."""

    def selected_checkpoint(self) -> str | None:
        """The checkpoint file the WebUI will load, without loading it (optional: the database predicts the
        family from its header before the model is there; a host without it lists everything until then)."""

    def tokenize(self, model: Any, texts: list[str]) -> list[list[int]]:
        """Token ids as the model's prompt path makes them (for keywords and diagnostics)."""

    def token_embeddings(self, model: Any) -> dict[int, Any]:
        """The model's token-embedding tables (``[vocabulary, width]`` tensors) by width; {} when none is found."""

    def expected_shape(self, model: Any) -> int:
        """The width of one embedding vector for ``model`` (768 SD1, 1024 SD2, 2048 SDXL)."""

    def embedding_base(self) -> type: ...

    def make_fix(self, offset: int, embedding: Any) -> Any: ...

    def device(self) -> Any: ...

    def hashing(self) -> bool: ...

    def write_generation_param(self, p: Any, key: str, value: str | None) -> None: ...


def processing_patches(processing: Any, hooks: Hooks) -> list[Patch]:
    """``cached_params`` on ``StableDiffusionProcessing`` and ``setup_conds`` on it and on every subclass that
    overrides it (txt2img adds the hires conditioning after ``super()``): the same on every WebUI of the family."""
    base = processing.StableDiffusionProcessing
    setup_owners = [cls for cls in vars(processing).values()
                    if isinstance(cls, type) and issubclass(cls, base) and "setup_conds" in vars(cls)]
    return [(base, "cached_params", hooks.cached_params),
            *[(cls, "setup_conds", hooks.setup_conds) for cls in setup_owners]]


def choose(hosts: Iterable[Host]) -> tuple[Host | None, str]:
    """The first host that fits, and the one start line that names it (or says what was looked for)."""
    looked: list[str] = []
    for host in hosts:
        probe = host.probe()
        if probe.fits:
            return host, f"{LOG_PREFIX}using the {host.name} adapter ({probe.detail})"
        looked.append(f"{host.name}: {probe.detail}")
    return None, (f"{LOG_PREFIX}no adapter fits this WebUI (looked for {'; '.join(looked)}); the extension stays "
                  "inactive and the WebUI's own handling is used.")


def on(register_callback: Callable, callback: Callable, name: str) -> None:
    """Register a ``script_callbacks`` callback; ``name=`` (its label in the WebUI's timings) exists from A1111 1.9,
    1.7-1.8 and Forge Classic take the callback alone."""
    if "name" in inspect.signature(register_callback).parameters:
        register_callback(callback, name=name)
    else:
        register_callback(callback)
