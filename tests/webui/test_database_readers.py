"""What other extensions read from the database keeps the stock database's invariants (issue 13, item 6).

Tag autocomplete, the most installed reader, walks ``skipped_embeddings | word_embeddings`` and for each entry
computes ``Path(emb.filename).relative_to(EMB_PATH)`` (``--embeddings-dir``) and files it under v1/v2/vXL by
``emb.shape`` (768/1024/2048); one entry outside ``--embeddings-dir`` raises and it lists no embedding at all. So:
every entry lies under ``--embeddings-dir`` unless the user added a folder, ``filename`` and ``shape`` are set, and
other families are in ``skipped``. The extension's own ``embeddings/`` folder (the standalone host's) is not used
inside the WebUI unless the user opts in. Fakes (conftest): the WebUI's modules; files and library are real.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors

from sd_embeddings.webui import entry, settings

VERSION = {768: "v1", 1024: "v2", 2048: "vXL"}


def reader_listing(db, embeddings_dir: Path) -> list[str]:
    """What a reader like tag autocomplete builds (its ``emb.txt``): ``relative/path,version``, sorted. Raises as
    it does when an entry lies outside ``embeddings_dir`` or has a shape it does not know."""
    rows = []
    for emb in (db.skipped_embeddings | db.word_embeddings).values():
        rel = Path(emb.filename).relative_to(embeddings_dir).as_posix()
        rows.append(f"{rel},{VERSION[emb.shape]}")
    return sorted(rows)


@pytest.fixture
def own_folder_setup(webui, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(entry, "EXTENSION_DIR", str(tmp_path / "extension"))
    own = tmp_path / "extension" / "embeddings"
    write_a1111_pt(own / "ownfile.pt", vectors(1, seed=5))
    write_a1111_pt(webui.folder / "sd1.pt", vectors(2))
    write_a1111_pt(webui.folder / "sub" / "deeper.pt", vectors(1, seed=1))
    write_a1111_pt(webui.folder / "sd2.pt", vectors(1, width=1024, seed=2))
    write_safetensors(webui.folder / "xl.safetensors", sdxl_vectors(1))
    webui.opts.data["sd_embeddings_watch"] = False
    webui.hijack.embedding_db.embedding_dirs = {str(webui.folder): None}
    entry.state.db = entry.state.original_db = entry.state.host = None
    with caplog.at_level("INFO", logger="sd_embeddings"):
        entry.register()
        webui.load_model(768)
        entry.database().load_textual_inversion_embeddings()
    yield own
    entry.uninstall()
    entry.state.db = entry.state.host = None


def test_readers_see_the_stock_invariants(webui, own_folder_setup, caplog):
    db = webui.hijack.embedding_db
    assert reader_listing(db, webui.folder) == ["sd1.pt,v1", "sd2.pt,v2", "sub/deeper.pt,v1", "xl.safetensors,vXL"]
    assert set(db.skipped_embeddings) == {"sd2", "xl"} and set(db.word_embeddings) == {"sd1", "deeper"}
    assert "ownfile" not in db.word_embeddings and "ownfile" not in db.skipped_embeddings
    started = [record.getMessage() for record in caplog.get_records("setup")]
    assert any(f"1 file(s) in {own_folder_setup} are not used inside the WebUI" in line for line in started)


def test_opting_in_adds_the_own_folder(webui, own_folder_setup):
    """The user's choice, as adding a folder is: the entry is then outside ``--embeddings-dir``."""
    webui.opts.data[settings.OWN_FOLDER] = True
    entry.apply_folder_settings()
    db = webui.hijack.embedding_db
    assert db.word_embeddings["ownfile"].filename == str(own_folder_setup / "ownfile.pt")
    assert entry.unused_own_files() == 0
    with pytest.raises(ValueError):
        reader_listing(db, webui.folder)
