"""Against a real WebUI (see conftest) with the real tag-autocomplete extension (DominikDoom/a1111-sd-webui-tagcomplete,
checked out outside the repo; set ``TAGCOMPLETE_DIR``), the most installed reader of the embedding database.

Tag autocomplete lists embeddings in its ``tags/temp/emb.txt`` on model load, from ``skipped_embeddings |
word_embeddings``, with paths relative to ``--embeddings-dir``; an entry outside that folder makes it fail and list
nothing. With a file in this extension's own ``embeddings/`` folder, its list must equal the stock WebUI's for the
same folder, except the files only this extension can load (torch's zip ``.pt``, which A1111 refuses). The two
WebUIs run one after the other on ``WEBUI_PORT + 2`` and ``+ 3``.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from factories import vectors, write_safetensors
from forks import current

pytestmark = pytest.mark.webui
REPO = Path(__file__).resolve().parents[2]
OWN_FILE = REPO / "embeddings" / "sd-embeddings-tagcomplete-check.safetensors"
FORGE2 = ("Forge/Neo: on stock Forge2 with an SD1.5 model tag autocomplete finds no database (no "
          "model_hijack.embedding_db; its Forge path asks for text_processing_engine_l first) and lists .pt/.bin file "
          "names without families (tagcomplete #297): there is no stock list with families to match. "
          "test_forge2_live.py checks the stock list and the opt-in model_hijack.embedding_db instead")


@pytest.fixture(scope="module")
def tagcomplete() -> Path:
    folder = os.environ.get("TAGCOMPLETE_DIR")
    if not folder:
        pytest.skip("set TAGCOMPLETE_DIR to a tag-autocomplete checkout")
    if current().adapter == "forge2":
        pytest.skip(FORGE2)
    return Path(folder).resolve()


def emb_txt_after_model_load(launch_webui, tagcomplete: Path, port_offset: int, settings: dict, *,
                             refresh_when_empty: bool = False) -> list[str]:
    """Tag autocomplete's list once the model has loaded; with ``refresh_when_empty``, an empty list is refreshed
    as a user would (the WebUI's refresh, then tag autocomplete's own): reForge's own database stays empty until
    the first generation or a refresh, so that is the earliest stock list there is to compare with."""
    emb_txt = tagcomplete / "tags" / "temp" / "emb.txt"
    started = time.time()

    def ready(server) -> bool:  # A1111: "Model loaded in 23.4s"; reForge names the model before "loaded in"
        return emb_txt.exists() and emb_txt.stat().st_mtime > started and \
            re.search(r"^Model .*loaded in ", server.log.read_text(errors="replace"), re.M) is not None

    with launch_webui(ready, port_offset=port_offset, settings=settings,
                      extensions={"tagcomplete": tagcomplete}) as server:
        time.sleep(2)  # the callback writes the file in one go; let it finish
        lines = emb_txt.read_text(encoding="utf-8").splitlines()
        if lines or not refresh_when_empty:
            return lines
        server.post("/sdapi/v1/refresh-embeddings")
        server.post("/tacapi/v1/refresh-embeddings")  # writes the file before it answers
        return emb_txt.read_text(encoding="utf-8").splitlines()


def test_tag_autocomplete_lists_what_it_lists_on_the_stock_webui(launch_webui, tagcomplete):
    stock = emb_txt_after_model_load(launch_webui, tagcomplete, 2, {"disabled_extensions": ["sd-embeddings"]},
                                     refresh_when_empty=True)
    write_safetensors(OWN_FILE, {"emb_params": vectors(1, seed=11)})
    try:
        ours = emb_txt_after_model_load(launch_webui, tagcomplete, 3, {})
    finally:
        OWN_FILE.unlink()
    assert stock and any(",v1" in line for line in stock) and any(",vXL" in line for line in stock)
    # the torch-zip file: A1111 refuses it, Forge Classic's own loader reads it; this extension reads it everywhere
    assert [line for line in ours if "zipemb" not in line] == [line for line in stock if "zipemb" not in line]
    assert any("zipemb" in line for line in ours)
