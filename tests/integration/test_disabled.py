"""Against a real WebUI (see conftest) with this extension installed but disabled (``disabled_extensions`` in the
WebUI's settings, as the Extensions tab writes it): the WebUI's own database, functions and API shape.

A small probe extension (written to a temporary folder and linked in for this module only) reports which
database class ``model_hijack.embedding_db`` is and whether any function this extension patches is wrapped. This
module's WebUI runs on ``WEBUI_PORT + 1`` and is stopped before the next module starts its own.
"""

from __future__ import annotations

import urllib.error

import pytest

pytestmark = pytest.mark.webui

STOCK_FIELDS = {"step", "sd_checkpoint", "sd_checkpoint_name", "shape", "vectors"}
PROBE = '''
from modules import script_callbacks


def _state():
    from modules import processing, sd_hijack, sd_hijack_clip

    db = sd_hijack.model_hijack.embedding_db
    patched = [(sd_hijack_clip.TextConditionalModel, "tokenize_line"),
               (processing.StableDiffusionProcessing, "cached_params"),
               (processing.StableDiffusionProcessing, "setup_conds"),
               (processing.StableDiffusionProcessingTxt2Img, "setup_conds")]
    return {"db": type(db).__module__ + "." + type(db).__qualname__,
            "wrapped": [owner.__name__ + "." + name for owner, name in patched
                        if hasattr(getattr(owner, name), "__wrapped__")]}


def _routes(_demo, app):
    app.add_api_route("/sd-embeddings-probe/state", _state, methods=["GET"])


script_callbacks.on_app_started(_routes)
'''


@pytest.fixture(scope="module")
def stock_webui(tmp_path_factory, launch_webui):
    probe = tmp_path_factory.mktemp("probe-extension")
    (probe / "scripts").mkdir()
    (probe / "scripts" / "sd_embeddings_probe.py").write_text(PROBE)

    def ready(server) -> bool:
        return bool(server.get("/sdapi/v1/embeddings")["loaded"].get("negemb")) and \
            bool(server.get("/sd-embeddings-probe/state"))

    with launch_webui(ready, port_offset=1, settings={"disabled_extensions": ["sd-embeddings"]},
                      extensions={"sd-embeddings-probe": probe}) as server:
        yield server


def test_disabled_extension_leaves_the_webui_database_and_functions(stock_webui):
    state = stock_webui.get("/sd-embeddings-probe/state")
    assert state == {"db": "modules.textual_inversion.textual_inversion.EmbeddingDatabase", "wrapped": []}
    log = stock_webui.log.read_text(errors="replace")
    assert "Textual inversion: " not in log  # our startup line (the WebUI's own reads "...embeddings loaded(N)")


def test_disabled_extension_leaves_the_stock_api(stock_webui):
    listing = stock_webui.get("/sdapi/v1/embeddings")
    assert set(listing) == {"loaded", "skipped"}
    assert listing["loaded"] and listing["skipped"]  # negemb and friends loaded, the SDXL file skipped
    for item in [*listing["loaded"].values(), *listing["skipped"].values()]:
        assert set(item) == STOCK_FIELDS
    assert "xlemb" in listing["skipped"] and "evil" not in listing["loaded"]
    with pytest.raises(urllib.error.HTTPError) as missing:
        stock_webui.get("/sd-embeddings/v1/embeddings")
    assert missing.value.code == 404
