"""The adapter seam: which host is chosen by probing classes (not versions), and the one start line. Fakes (conftest):
``modules.sd_hijack_clip`` in the 1.10 layout (``TextConditionalModel``) and, rebuilt here, in the 1.7-1.9 / Forge
Classic layout (only ``FrozenCLIPEmbedderWithCustomWordsBase``, which defines ``tokenize_line`` itself)."""

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


def test_the_1_10_layout_is_named_in_one_start_line(fresh, caplog):
    with caplog.at_level("INFO", logger="sd_embeddings"):
        entry.register()
    lines = [r.getMessage() for r in caplog.records if "adapter" in r.getMessage()]
    assert lines == ["Textual inversion (sd-embeddings): using the a1111 adapter (TextConditionalModel.tokenize_line)"]
    clip = fresh.modules["modules.sd_hijack_clip"].TextConditionalModel
    assert hasattr(clip.tokenize_line, "__wrapped__")


def test_the_older_layout_without_text_conditional_model_is_patched_where_tokenize_line_lives(fresh, monkeypatch,
                                                                                             caplog):
    """A1111 before 1.10 and Forge Classic: ``tokenize_line`` is defined on ``FrozenCLIPEmbedderWithCustomWordsBase``
    and there is no ``TextConditionalModel``; the adapter must work there, not switch itself off."""
    old_base = type("FrozenCLIPEmbedderWithCustomWordsBase", (),
                    {"tokenize_line": vars(fresh.modules["modules.sd_hijack_clip"].TextConditionalModel)[
                        "tokenize_line"]})
    fixes = fresh.modules["modules.sd_hijack_clip"].PromptChunkFix
    module = types.ModuleType("modules.sd_hijack_clip")
    module.FrozenCLIPEmbedderWithCustomWordsBase, module.PromptChunkFix = old_base, fixes
    monkeypatch.setitem(sys.modules, "modules.sd_hijack_clip", module)
    monkeypatch.setattr(sys.modules["modules"], "sd_hijack_clip", module)
    with caplog.at_level("INFO", logger="sd_embeddings"):
        entry.register()
    assert "using the a1111 adapter (FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line)" in caplog.text
    assert hasattr(old_base.tokenize_line, "__wrapped__")
    entry.uninstall()
    assert not hasattr(old_base.tokenize_line, "__wrapped__")


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
