"""The adapter's database over a real inotify watcher (Linux) lists only the folder that changed; fakes: the WebUI's
``modules`` (conftest). The folder listings are counted, never timed."""

from __future__ import annotations

import time

import pytest
from factories import count_folder_listings, vectors, write_safetensors

from sd_embeddings.library import Library
from sd_embeddings.library.watcher import ChangeWatcher
from sd_embeddings.webui.database import LibraryDatabase


def test_the_database_lists_only_the_folder_inotify_saw_change(webui, monkeypatch):
    root = webui.folder
    for i in range(12):
        write_safetensors(root / f"g{i % 4}" / f"s{i % 3}" / f"e{i}.safetensors", {"emb_params": vectors(1, seed=i)})
    watcher = ChangeWatcher(interval=3600)
    if watcher.kind != "inotify":
        pytest.skip("needs inotify")
    listed = count_folder_listings(monkeypatch)
    webui.load_model(768)
    db = LibraryDatabase(Library([], background_hashing=False), watcher)
    db.add_embedding_dir(str(root))
    try:
        db.load_textual_inversion_embeddings()
        listed.clear()
        write_safetensors(root / "g0" / "s2" / "fresh.safetensors", {"emb_params": vectors(1)})
        deadline = time.monotonic() + 60  # a hang cap: the kernel queues the events at once
        while not watcher._dirty.is_set() and time.monotonic() < deadline:
            watcher._drain()
            time.sleep(0.05)
        db.load_textual_inversion_embeddings()
        assert "fresh" in db.word_embeddings and listed == [str(root / "g0" / "s2")]
    finally:
        watcher.stop()
