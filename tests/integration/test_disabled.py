"""Against a real WebUI (see conftest) with this extension installed but disabled (``disabled_extensions`` in the
WebUI's settings, as the Extensions tab writes it): the WebUI's own database, functions and API shape.

A small probe extension (written to a temporary folder and linked in for this module only) reports which
database class ``model_hijack.embedding_db`` is and whether any function this extension patches is wrapped. This
module's WebUI runs on ``WEBUI_PORT + 1`` and is stopped before the next module starts its own.
"""

from __future__ import annotations

import urllib.error

import pytest
from forks import current

pytestmark = pytest.mark.webui

STOCK_FIELDS = {"step", "sd_checkpoint", "sd_checkpoint_name", "shape", "vectors"}
# Written into the probe extension with the fork's list of functions; it reports those this WebUI defines in the
# class itself (never inherited), those of them that are wrapped, and the database class if the fork has one
PROBE = '''
import importlib

from modules import script_callbacks

PATCHED = {patched!r}


def _own(target):
    module, _, path = target.partition(":")
    owner_name, _, name = path.partition(".")
    return vars(getattr(importlib.import_module(module), owner_name, object)).get(name)


def _state():
    try:
        from modules import sd_hijack
    except ImportError:  # Forge Neo removed it
        sd_hijack = None
    db = getattr(getattr(sd_hijack, "model_hijack", None), "embedding_db", None)
    return {{"db": None if db is None else type(db).__module__ + "." + type(db).__qualname__,
            "present": [target for target in PATCHED if _own(target) is not None],
            "wrapped": [target for target in PATCHED if hasattr(_own(target), "__wrapped__")]}}


def _routes(_demo, app):
    app.add_api_route("/sd-embeddings-probe/state", _state, methods=["GET"])


script_callbacks.on_app_started(_routes)
'''


@pytest.fixture(scope="module")
def stock_webui(tmp_path_factory, launch_webui):
    probe = tmp_path_factory.mktemp("probe-extension")
    (probe / "scripts").mkdir()
    (probe / "scripts" / "sd_embeddings_probe.py").write_text(PROBE.format(patched=current().patched))

    def ready(server) -> bool:
        if not server.get("/sdapi/v1/embeddings")["loaded"]:
            # reForge's own database loads at the first generation or a refresh, not when the model loads
            server.post("/sdapi/v1/refresh-embeddings")
        return bool(server.get("/sdapi/v1/embeddings")["loaded"].get("negemb")) and \
            bool(server.get("/sd-embeddings-probe/state"))

    with launch_webui(ready, port_offset=1, settings={"disabled_extensions": ["sd-embeddings"]},
                      extensions={"sd-embeddings-probe": probe}) as server:
        yield server


def test_disabled_extension_leaves_the_webui_database_and_functions(stock_webui):
    state = stock_webui.get("/sd-embeddings-probe/state")
    assert state["db"] == current().stock_db and state["wrapped"] == []
    # it looked at real functions: one of the two tokenize_line owners, cached_params, the setup_conds pair
    assert len(state["present"]) == max(len(current().patched) - 1, 0), state
    log = stock_webui.log.read_text(errors="replace")
    assert "Textual inversion: " not in log  # our startup line (the WebUI's own reads "...embeddings loaded(N)")


def test_disabled_extension_leaves_the_stock_api(stock_webui):
    listing = stock_webui.get("/sdapi/v1/embeddings")
    assert set(listing) == {"loaded", "skipped"}
    for item in [*listing["loaded"].values(), *listing["skipped"].values()]:
        assert set(item) == STOCK_FIELDS
    assert "negemb" in listing["loaded"] and "evil" not in listing["loaded"]
    if current().stock_api_skips:  # the SDXL file skipped
        assert "xlemb" in listing["skipped"]
    else:  # Forge2: the API's own database never compares widths
        assert "xlemb" in listing["loaded"] and listing["skipped"] == {}
    with pytest.raises(urllib.error.HTTPError) as missing:
        stock_webui.get("/sd-embeddings/v1/embeddings")
    assert missing.value.code == 404
