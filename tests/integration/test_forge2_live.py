"""Against a real Forge (``WEBUI_KIND=forge`` or ``neo``; see conftest): what only the forge2 adapter does.

Each module-scoped WebUI gets a small probe extension (written to a temporary folder, linked in for this module only)
that records every ``torch.load`` call from its own load on (before any embedding database of Forge's loads) and
reports the databases Forge's engines, its Textual Inversion page and ``model_hijack`` hold. Forge loads the checkpoint
on the first generation, so each fixture generates once before the tests. Ours runs on ``WEBUI_PORT + 4``, the stock
one (this extension disabled, the negative control: the same probe sees Forge unpickle the files) on ``+ 5``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.webui, pytest.mark.skipif(os.environ.get("WEBUI_KIND") not in ("forge", "neo"),
                                                    reason="set WEBUI_KIND=forge or neo for the Forge2 checks")]
PROBE = '''
import os

import torch
from modules import script_callbacks

LOADED = []
_load = torch.load


def _recording_load(f, *args, **kwargs):
    LOADED.append(os.fspath(f) if isinstance(f, (str, os.PathLike)) else repr(f))
    return _load(f, *args, **kwargs)


torch.load = _recording_load


def _state():
    from modules import sd_models
    import modules.ui_extra_networks_textual_inversion as tab

    try:
        from modules import sd_hijack
    except ImportError:  # Neo removed it
        sd_hijack = None
    model = sd_models.model_data.sd_model
    engines = {name: value for name, value in vars(model).items()
               if name.startswith("text_processing_engine") and hasattr(value, "embeddings")}
    databases = {id(getattr(e.embeddings, "db", e.embeddings)) for e in engines.values()}
    hijack = getattr(getattr(sd_hijack, "model_hijack", None), "embedding_db", None)
    return {"torch_load": LOADED,
            "engines": {name: type(e.embeddings).__module__ + "." + type(e.embeddings).__qualname__
                        for name, e in engines.items()},
            "one_database": len(databases) == 1 and id(tab.embedding_db) in databases,
            "modules_read_engine_db": all(
                e.text_encoder.transformer.text_model.embeddings.token_embedding.embeddings is e.embeddings
                for e in engines.values()),
            "tokenize_line_wrapped": [name for name, e in engines.items()
                                      if hasattr(type(e).tokenize_line, "__wrapped__")],
            "hijack": None if hijack is None else type(hijack).__qualname__,
            "hijack_is_shared": id(hijack) in databases}


def _routes(_demo, app):
    app.add_api_route("/sd-embeddings-probe/state", _state, methods=["GET"])


script_callbacks.on_app_started(_routes)
'''
PROMPT, NEGATIVE = "a cat, zipemb", "negemb, blurry, negemb, (negemb:1.2)"


def _probe(tmp_path_factory) -> Path:
    probe = tmp_path_factory.mktemp("probe-extension")
    (probe / "scripts").mkdir()
    (probe / "scripts" / "sd_embeddings_probe.py").write_text(PROBE)
    return probe


@pytest.fixture(scope="module")
def forge(tmp_path_factory, launch_webui):
    def ready(server) -> bool:  # Forge loads the checkpoint on the first generation (below)
        return bool(server.get("/sdapi/v1/embeddings")["loaded"].get("negemb"))

    with launch_webui(ready, port_offset=4, extensions={"sd-embeddings-probe": _probe(tmp_path_factory)}) as server:
        server.first = server.txt2img(PROMPT, NEGATIVE)  # loads the checkpoint
        yield server


@pytest.fixture(scope="module")
def stock_forge(tmp_path_factory, launch_webui):
    def ready(server) -> bool:
        return bool(server.get("/sd-embeddings-probe/state"))

    with launch_webui(ready, port_offset=5, settings={"disabled_extensions": ["sd-embeddings"]},
                      extensions={"sd-embeddings-probe": _probe(tmp_path_factory)}) as server:
        server.first = server.txt2img(PROMPT, NEGATIVE)
        yield server


def infotext_value(infotext: str, key: str) -> str:
    match = re.search(rf'{key}: "([^"]*)"', infotext) or re.search(rf"{key}: ([^,\n]*)", infotext)
    return match.group(1) if match else ""


def test_every_engine_the_tab_and_the_api_read_one_database(forge):
    state = forge.get("/sd-embeddings-probe/state")
    assert state["engines"] and set(state["engines"].values()) == {
        "sd_embeddings.webui.forge2_engines.EngineDatabase"}, state
    assert state["one_database"] and state["modules_read_engine_db"] and state["tokenize_line_wrapped"]
    listing = forge.get("/sdapi/v1/embeddings")
    assert "SDXL" in listing["skipped"]["xlemb"]["reason"] and listing["loaded"]["zipemb"]["family"] == "sd1"


def test_one_start_line_names_the_forge2_adapter_and_the_summary_is_printed_once(forge):
    log = forge.log.read_text(errors="replace")
    lines = [line for line in log.splitlines() if "Textual inversion (sd-embeddings): " in line]
    engines = ("backend.text_processing.classic_engine.ClassicTextProcessingEngine",  # Forge, Neo up to 2.x
               "backend.text_processing.sd_engine.ClipEngine")  # Neo after the rename
    assert lines in ([f"Textual inversion (sd-embeddings): using the forge2 adapter ({engine}.tokenize_line)"]
                     for engine in engines), lines
    assert log.count("Textual inversion: 3 loaded, 1 incompatible (SDXL), 1 unsafe — see the tab") == 1, log[-3000:]


def test_no_embedding_file_goes_through_forge_s_torch_load(forge):
    """Forge's engines, tab and API each ``torch.load`` every ``.pt`` (full pickle on its pinned torch 2.3)."""
    assert forge.post("/sdapi/v1/refresh-embeddings") is None  # Forge's API reloads its own database here
    forge.txt2img("a dog, legacyemb")
    loaded = forge.get("/sd-embeddings-probe/state")["torch_load"]
    assert not [path for path in loaded if path.startswith(str(forge.embeddings))], loaded


def test_the_ti_line_names_each_embedding_once_with_the_negative_also_from_cache_and_in_params_txt(forge):
    assert infotext_value(forge.first, "TI") == "zipemb, negemb"
    again = forge.txt2img(PROMPT, NEGATIVE)  # conditioning cache hit
    assert infotext_value(again, "TI") == "zipemb, negemb"
    assert infotext_value(again, "TI hashes") == infotext_value(forge.first, "TI hashes") != ""
    params = (Path(os.environ["WEBUI_DIR"]) / "params.txt").read_text(encoding="utf8")
    assert infotext_value(params, "TI") == "zipemb, negemb" and infotext_value(params, "TI hashes").count(":") == 2


NO_SD_HIJACK = "Neo has no modules.sd_hijack, so there is no model_hijack to publish the database on"


def skip_without_sd_hijack() -> None:
    if not (Path(os.environ["WEBUI_DIR"]) / "modules" / "sd_hijack.py").exists():
        pytest.skip(NO_SD_HIJACK)


def test_model_hijack_embedding_db_is_there_only_when_switched_on(forge):
    skip_without_sd_hijack()
    assert forge.get("/sd-embeddings-probe/state")["hijack"] is None
    try:
        forge.post("/sdapi/v1/options", {"sd_embeddings_embedding_db_shim": True})
        state = forge.get("/sd-embeddings-probe/state")
        assert state["hijack"] == "LibraryDatabase" and state["hijack_is_shared"]
    finally:
        forge.post("/sdapi/v1/options", {"sd_embeddings_embedding_db_shim": False})
    assert forge.get("/sd-embeddings-probe/state")["hijack"] is None


def test_stock_forge_unpickles_the_files_and_loses_the_negative_names(stock_forge):
    """The negative control: the probe sees what the adapter prevents, on the same files and prompts."""
    state = stock_forge.get("/sd-embeddings-probe/state")
    loaded = [path for path in state["torch_load"] if path.startswith(str(stock_forge.embeddings))]
    assert {Path(path).name for path in loaded} >= {"legacyemb.pt", "zipemb.pt", "evil.pt"}, state
    assert set(state["engines"].values()) == {"backend.text_processing.textual_inversion.EmbeddingDatabase"}
    assert state["hijack"] is None and state["tokenize_line_wrapped"] == [] and not state["one_database"]
    assert infotext_value(stock_forge.first, "TI") == "zipemb" and "TI hashes" not in stock_forge.first



def _emb_txt_after_first_generation(launch_webui, tagcomplete: Path, port_offset: int, settings: dict) -> list[str]:
    """Tag autocomplete writes ``tags/temp/emb.txt`` when a model loads, which on Forge is the first generation."""
    emb_txt = tagcomplete / "tags" / "temp" / "emb.txt"
    with launch_webui(lambda server: bool(server.get("/sdapi/v1/embeddings")), port_offset=port_offset,
                      settings=settings, extensions={"tagcomplete": tagcomplete}) as server:
        before = emb_txt.stat().st_mtime if emb_txt.exists() else 0.0
        server.txt2img("a model to load")
        assert emb_txt.stat().st_mtime > before
        return emb_txt.read_text(encoding="utf-8").splitlines()


def test_tag_autocomplete_finds_the_families_through_the_opt_in_embedding_db(launch_webui):
    """Tag autocomplete looks for ``model_hijack.embedding_db``, then (Forge) ``text_processing_engine`` *or*
    ``text_processing_engine_l``, evaluating the ``_l`` default first, which an SD1.5 model lacks: on stock Forge it
    falls back to listing ``.pt``/``.bin`` file names without families (tagcomplete #297). With the setting on it
    reads the shared database and lists every usable and skipped file with its family, as on A1111."""
    folder = os.environ.get("TAGCOMPLETE_DIR")
    if not folder:
        pytest.skip("set TAGCOMPLETE_DIR to a tag-autocomplete checkout")
    skip_without_sd_hijack()
    tagcomplete = Path(folder).resolve()
    stock = _emb_txt_after_first_generation(launch_webui, tagcomplete, 6,
                                            {"disabled_extensions": ["sd-embeddings"]})
    ours = _emb_txt_after_first_generation(launch_webui, tagcomplete, 7,
                                           {"sd_embeddings_embedding_db_shim": True})
    assert stock and not any(line.endswith((",v1", ",vXL")) for line in stock), stock
    assert not any("negemb" in line for line in stock)  # a .safetensors file: the fallback never lists it
    families = {line.split(",")[0].strip('"'): line.rsplit(",", 1)[1] for line in ours}
    assert families == {"legacyemb.pt": "v1", "negative/negemb.safetensors": "v1", "styles/zipemb.pt": "v1",
                        "xl/xlemb.safetensors": "vXL"}, ours  # evil.pt: unsafe, listed nowhere
