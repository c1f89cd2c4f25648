"""A normal launch: the WebUI's prepare step runs (as for every user), which leaves a root log handler at WARNING
before extensions load; and no model is loaded at start (``--skip-load-model-at-start``), so the listing shows what
the extension knows before any model: the selected checkpoint's family, read from its header. Where the prepare
step cannot run offline on the harness (``Fork.prepare_offline``), it is skipped and the rest is checked."""

from __future__ import annotations

import pytest
from forks import current

pytestmark = pytest.mark.webui


def test_a_normal_launch_prints_the_summary_and_lists_by_the_checkpoints_family(launch_webui, webui_args):
    fork = current()
    args = [arg for arg in webui_args if arg != "--skip-prepare-environment" or not fork.prepare_offline]
    # Forge2 never loads a model at start (and Neo has no such flag); Forge Classic has no flag to skip it
    extra = [fork.skip_model_flag] if fork.loads_model_at_start and fork.skip_model_flag else []
    with launch_webui(lambda server: True, port_offset=5, base_args=args, extra_args=extra) as server:
        listing = server.get("/sdapi/v1/embeddings")
        log = server.log.read_text(errors="replace")
    if extra or not fork.loads_model_at_start:
        assert "Model loaded" not in log
    assert {"legacyemb", "zipemb", "negemb"} <= set(listing["loaded"]) and set(listing["skipped"]) == {"xlemb"}
    assert "Textual inversion: 3 loaded, 1 incompatible (SDXL), 1 unsafe — see the tab" in log
    assert "WARNING:sd_embeddings" not in log and "evil.pt" in log  # the bad file's line, plain
