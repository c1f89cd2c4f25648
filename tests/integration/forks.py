"""What the live suite needs to know about each WebUI it can run against (``WEBUI_KIND``, default ``a1111``).

One ``Fork`` per kind: how to launch it offline on a CPU, what its stock state looks like with this extension
disabled (the database class, the functions the extension would wrap), and which checks do not apply there, each
with the reason the test prints when it skips. Facts are read from each fork's source (see the comments); a check
is skipped only for a stated reason, never because it failed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

A1111_ARGS = "--skip-prepare-environment --skip-torch-cuda-test --skip-version-check --no-half --use-cpu all " \
             "--no-download-sd-model --do-not-download-clip"
# Forge-derived forks: ``--always-cpu`` (fp32 on CPU); they ask for Python 3.10 and the harness runs 3.11
FORGE_ARGS = "--skip-prepare-environment --skip-python-version-check --skip-torch-cuda-test --skip-version-check " \
             "--always-cpu --no-download-sd-model"
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
    not_applicable: dict[str, str] = field(default_factory=dict)
    """Check name -> why it does not apply to this fork (the test is skipped with that reason)."""


FORKS = {
    "a1111": Fork("a1111", A1111_ARGS, A1111_STOCK_DB, A1111_PATCHED, "a1111"),
    # Haoming02/sd-webui-forge-classic, ``classic`` branch: A1111's prompt path kept (sd_hijack_clip, embedding_db)
    "classic": Fork("classic", FORGE_ARGS, A1111_STOCK_DB, A1111_PATCHED, "a1111"),
    # Panchovix/stable-diffusion-webui-reForge ``main``: same, ``forge_clip`` subclasses keep ``tokenize_line``
    "reforge": Fork("reforge", FORGE_ARGS, A1111_STOCK_DB, A1111_PATCHED, "a1111"),
    # lllyasviel Forge main / Forge Neo: the Forge2 backend; the facts below are for the forge2 adapter to fill in
    "forge": Fork("forge", FORGE_ARGS, None, (), "forge2"),
    "neo": Fork("neo", FORGE_ARGS, None, (), "forge2"),
}


def current() -> Fork:
    kind = os.environ.get("WEBUI_KIND", "a1111")
    if kind not in FORKS:
        raise pytest.UsageError(f"WEBUI_KIND={kind!r}: expected one of {', '.join(FORKS)}")
    return FORKS[kind]


def skip_unless_applies(check: str) -> None:
    """Skip the calling test, with the fork's stated reason, when ``check`` does not apply to this fork."""
    reason = current().not_applicable.get(check)
    if reason:
        pytest.skip(f"{current().kind}: {reason}")
