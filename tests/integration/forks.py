"""What the live suite needs to know about each WebUI it can run against (``WEBUI_KIND``, default ``a1111``).

One ``Fork`` per kind: how to launch it offline on a CPU, what its stock state looks like with this extension
disabled (the database class, the functions the extension would wrap), and the adapter its start line names. Facts
are read from each fork's source (see the comments). A check that does not apply somewhere is skipped by its test
with the reason (``test_params_txt_has_ti_hashes_once`` on A1111 1.7-1.8), never because it failed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import pytest

A1111_ARGS = "--skip-prepare-environment --skip-torch-cuda-test --skip-version-check --no-half --use-cpu all " \
             "--no-download-sd-model --do-not-download-clip"
# Forge-derived forks: ``--always-cpu`` (fp32 on CPU); they ask for Python 3.10 and the harness runs 3.11
FORGE_ARGS = "--skip-prepare-environment --skip-python-version-check --skip-torch-cuda-test --skip-version-check " \
             "--always-cpu --no-download-sd-model"
# Neo has neither ``--always-cpu`` (its CPU flag is ``--cpu``) nor ``--no-download-sd-model``, and its argument parser
# stops at unknown ones
NEO_ARGS = "--skip-prepare-environment --skip-python-version-check --skip-torch-cuda-test --skip-version-check --cpu"
# Forge2's page takes txt2img's width/height from these options (``modules_forge/main_entry.py``), not from
# ui-config.json: without them a generation from the page is 512x512 (minutes a step on CPU)
FORGE2_SETTINGS = {"sd_t2i_width": 64, "sd_t2i_height": 64}
A1111_STOCK_DB = "modules.textual_inversion.textual_inversion.EmbeddingDatabase"
# ``module:Class.attribute`` the extension may wrap on the A1111 prompt path; the probe reports those the running
# WebUI has and that are wrapped in the class itself (``tokenize_line`` is on ``TextConditionalModel`` from A1111
# 1.10, on ``FrozenCLIPEmbedderWithCustomWordsBase`` before it and in Forge Classic / reForge)
A1111_PATCHED = ("modules.sd_hijack_clip:TextConditionalModel.tokenize_line",
                 "modules.sd_hijack_clip:FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line",
                 "modules.processing:StableDiffusionProcessing.cached_params",
                 "modules.processing:StableDiffusionProcessing.setup_conds",
                 "modules.processing:StableDiffusionProcessingTxt2Img.setup_conds")


@dataclass(frozen=True)
class Fork:
    kind: str
    args: str
    """Default launch.py arguments (``WEBUI_ARGS`` overrides them)."""
    stock_db: str | None
    """Qualified class name of ``modules.sd_hijack.model_hijack.embedding_db`` when the extension is disabled
    (``None``: the fork has no such attribute)."""
    patched: tuple[str, ...]
    adapter: str
    """The adapter name the start line must name (``using the <adapter> adapter``)."""
    stock_api_skips: bool = True
    """Whether the stock ``/sdapi/v1/embeddings`` lists embeddings of another model family under ``skipped``. Forge2's
    API builds its own database and loads it with ``sync_with_sd_model=False``, so it never learns the model's
    width: every readable file is ``loaded``, ``skipped`` is always empty."""
    options_list_extensions: bool = True
    """Whether ``GET /sdapi/v1/options`` lists extensions' settings. Forge2's built-in ControlNet imports
    ``modules.api.api`` while scripts load, which builds the options' response model before any extension registers
    its settings: they are left out of the listing (``POST`` still sets them)."""
    prepare_offline: bool = True
    """Whether launch.py's prepare step can run on the offline harness without changing its packages. Forge's
    reinstalls its pins (``requirements_versions.txt``: setuptools 69.5.1; ``clip`` from GitHub, which the harness
    leaves out), Neo's its ``requirements.txt`` on every start: the harness keeps the local CPU torch 2.14.1 and its
    own versions, so these forks launch with ``--skip-prepare-environment`` only."""
    loads_model_at_start: bool = True
    """Forge2 loads the checkpoint on the first generation (``forge_model_reload``), never at start."""
    skip_model_flag: str | None = "--skip-load-model-at-start"
    """The launch flag that keeps the model from loading at start; Forge Classic has none."""
    settings: dict = field(default_factory=dict)
    """What a fresh ``--ui-settings-file`` (config.json) must hold for the fork to start unattended and generate
    small from the page."""


FORGE2_FACTS = {"stock_api_skips": False, "options_list_extensions": False, "prepare_offline": False,
                "loads_model_at_start": False}

FORKS = {
    "a1111": Fork("a1111", A1111_ARGS, A1111_STOCK_DB, A1111_PATCHED, "a1111"),
    # Haoming02/sd-webui-forge-classic, ``classic`` branch: A1111's prompt path kept (sd_hijack_clip, embedding_db)
    # Seen live: GET /sdapi/v1/options leaves the extension's setting out, as on Forge2 (whose built-in ControlNet
    # builds the options model early; Classic has the same ControlNet). Its prepare step installs ``clip`` from GitHub
    # when the package is missing and ``requirements.txt`` when unmet: not run on the offline harness. No launch
    # flag keeps the model from loading at start.
    "classic": Fork("classic", FORGE_ARGS, A1111_STOCK_DB, A1111_PATCHED, "a1111", options_list_extensions=False,
                    prepare_offline=False, skip_model_flag=None),
    # Panchovix/stable-diffusion-webui-reForge ``main``: same, ``forge_clip`` subclasses keep ``tokenize_line``
    # Its prepare step pins setuptools 69.5.1 and a pydantic wheel from GitHub (requirements_versions.txt); GET
    # /sdapi/v1/options leaves extensions' settings out, as on Classic (seen live)
    "reforge": Fork("reforge", FORGE_ARGS, A1111_STOCK_DB, A1111_PATCHED, "a1111", prepare_offline=False,
                    options_list_extensions=False),
    # lllyasviel Forge main / Forge Neo: the Forge2 backend; the facts below are for the forge2 adapter to fill in
    "forge": Fork("forge", FORGE_ARGS, None, (), "forge2", **FORGE2_FACTS, settings=FORGE2_SETTINGS),
    # Neo 2.x stops at start ("You are updating from an old version... Press Enter") unless config.json carries
    # its VERSION_UID marker; its page takes the steps from an option too (``modules_forge/presets.py``: 32 for SD)
    "neo": Fork("neo", NEO_ARGS, None, (), "forge2", **FORGE2_FACTS,
                settings={**FORGE2_SETTINGS, "sd_t2i_step": 1, "VERSION_UID": "PY313"}),
}


def current() -> Fork:
    kind = os.environ.get("WEBUI_KIND", "a1111")
    if kind not in FORKS:
        raise pytest.UsageError(f"WEBUI_KIND={kind!r}: expected one of {', '.join(FORKS)}")
    return FORKS[kind]


def a1111_version(infotext: str) -> tuple[int, int] | None:
    """``(1, 9)`` from an A1111 infotext's ``Version: v1.9.4``; ``None`` for forks (``Version: classic``, reForge's
    ``f1.0.0v2-v1.10.1RC-…``) and when it is missing."""
    match = re.search(r"Version: v(\d+)\.(\d+)", infotext)
    return (int(match[1]), int(match[2])) if match else None
