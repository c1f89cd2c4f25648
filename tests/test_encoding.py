"""``encode_report`` when a file is replaced between the scan and the read of its vectors (``ChangedFileError``)."""

from __future__ import annotations

import pytest
from factories import vectors, write_a1111_pt
from prompt_helpers import library_with

from sd_embeddings.encode.encoding import encode_report
from sd_embeddings.errors import ChangedFileError

pytest.importorskip("transformers")


pytestmark = pytest.mark.usefixtures("shallow_models")


def test_file_replaced_after_scan_is_rescanned_and_encoded_once_more(tmp_path) -> None:
    library = library_with(tmp_path / "emb", {"EasyNegative": vectors(2)})
    write_a1111_pt(tmp_path / "emb" / "EasyNegative.pt", vectors(3, seed=5))  # replaced, not rescanned
    assert library.get("EasyNegative").vectors == 2
    report = encode_report(library, "a cat, EasyNegative")
    (used,) = report["embeddings"]
    assert used["keyword"] == "EasyNegative" and used["vectors"] == 3  # the new file, matched and read afresh
    assert report["positive"]["checksum"] is not None
    assert library.get("EasyNegative").vectors == 3


def test_second_changed_file_error_is_raised(tmp_path, monkeypatch) -> None:
    library = library_with(tmp_path / "emb", {"EasyNegative": vectors(2)})
    refreshes: list[bool] = []
    refresh = library.refresh
    monkeypatch.setattr(library, "refresh", lambda *a, **k: refreshes.append(True) or refresh(*a, **k))

    def always_changed(entry):
        raise ChangedFileError(entry.path, "the file changed after it was scanned; rescan and retry")

    monkeypatch.setattr(library, "load", always_changed)
    with pytest.raises(ChangedFileError, match="EasyNegative.pt"):
        encode_report(library, "EasyNegative")
    assert refreshes == [True]
    assert encode_report(library, "EasyNegative", conditioning=False)["embeddings"]  # no vectors read: no error
