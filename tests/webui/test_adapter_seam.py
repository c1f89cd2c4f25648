"""The adapter seam: which host is chosen by probing classes (not versions), and the one start line. Fakes (conftest):
``modules`` in the 1.10 layout and in the 1.7-1.9 / Forge Classic layout (``layout``)."""

from __future__ import annotations

import sys
import types

import pytest

from sd_embeddings.webui import entry, host
from sd_embeddings.webui.a1111 import A1111Host


@pytest.fixture
def fresh(webui):
    webui.opts.data["sd_embeddings_watch"] = False
    entry.state.db = entry.state.original_db = entry.state.host = None
    yield webui
    if entry.state.host is not None:
        entry.uninstall()
    entry.state.db = entry.state.host = None


def test_the_class_that_defines_tokenize_line_is_named_in_one_start_line_and_patched(fresh, caplog):
    """1.10: ``TextConditionalModel``; 1.7-1.9 and Forge Classic: only ``FrozenCLIPEmbedderWithCustomWordsBase``,
    which defines ``tokenize_line`` itself, and callbacks without ``name=``. The adapter works on both and says
    which it found; unload takes the wrapper off again."""
    with caplog.at_level("INFO", logger="sd_embeddings"):
        entry.register()
    lines = [r.getMessage() for r in caplog.records if "adapter" in r.getMessage()]
    owner = fresh.line_owner
    assert lines == [f"Textual inversion (sd-embeddings): using the a1111 adapter ({owner.__name__}.tokenize_line)"]
    assert hasattr(owner.tokenize_line, "__wrapped__")
    assert {"before_ui", "app_started", "script_unloaded"} <= set(fresh.callbacks)
    for callback in fresh.callbacks["script_unloaded"]:
        callback()
    assert not hasattr(owner.tokenize_line, "__wrapped__")


def test_a_failure_while_registering_leaves_the_webui_stock(fresh, monkeypatch):
    """A callback registration that raises (a WebUI whose ``script_callbacks`` changed) must not leave the database
    swapped and the functions wrapped with nothing to undo them."""
    original = fresh.hijack.embedding_db

    def broken(callback, **kwargs):
        raise TypeError("on_app_started() changed")

    monkeypatch.setattr(fresh.modules["modules.script_callbacks"], "on_app_started", broken)
    with pytest.raises(TypeError):
        entry.register()
    assert fresh.hijack.embedding_db is original and entry.state.host is None
    assert not hasattr(fresh.line_owner.tokenize_line, "__wrapped__")
    processing = fresh.modules["modules.processing"]
    assert not hasattr(processing.StableDiffusionProcessing.cached_params, "__wrapped__")
    assert not hasattr(processing.StableDiffusionProcessingTxt2Img.setup_conds, "__wrapped__")


def test_an_unknown_layout_says_what_was_looked_for(fresh, monkeypatch, caplog):
    """A fork whose ``sd_hijack_clip`` has neither class (Forge's backend): one warning naming what was looked for,
    nothing swapped, no callbacks."""
    module = types.ModuleType("modules.sd_hijack_clip")
    monkeypatch.setitem(sys.modules, "modules.sd_hijack_clip", module)
    monkeypatch.setattr(sys.modules["modules"], "sd_hijack_clip", module)
    original = fresh.hijack.embedding_db
    with caplog.at_level("WARNING"):
        entry.register()
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    message = record.getMessage()
    assert "no adapter fits this WebUI" in message and "stays inactive" in message
    assert "TextConditionalModel or FrozenCLIPEmbedderWithCustomWordsBase with tokenize_line" in message
    assert fresh.hijack.embedding_db is original and not any(fresh.callbacks.values())
    entry.state.host = None


def test_choose_takes_the_first_host_that_fits():
    class Nope:
        name = "nope"

        def probe(self) -> host.Probe:
            return host.Probe(False, "modules.nothing")

    class Yes(Nope):
        name = "yes"

        def probe(self) -> host.Probe:
            return host.Probe(True, "Found.it")

    chosen, line = host.choose([Nope(), Yes()])
    assert isinstance(chosen, Yes) and line.endswith("using the yes adapter (Found.it)")
    chosen, line = host.choose([Nope()])
    assert chosen is None and "(looked for nope: modules.nothing)" in line


def test_the_a1111_host_is_what_the_database_uses_by_default(fresh):
    assert isinstance(fresh.make_db().host, A1111Host)
