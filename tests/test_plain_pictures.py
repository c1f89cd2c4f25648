"""A plain picture in the embeddings folder (``photo.png``, no embedding data) is not a candidate keyword: a prompt
with the word "photo" gets no "stays plain text ... could not be loaded" warning, and it is not a problem file."""

from __future__ import annotations

from pathlib import Path

from factories import vectors
from PIL import Image
from prompt_helpers import library_with

from sd_embeddings.encode.encoding import encode_report
from sd_embeddings.records import Status


def test_a_plain_picture_is_not_a_candidate_keyword(tmp_path: Path) -> None:
    library = library_with(tmp_path, {"mystyle": vectors(2)})
    Image.new("RGB", (64, 48), (200, 120, 40)).save(tmp_path / "photo.png")
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04 truncated")
    library.refresh()
    photo = next(entry for entry in library.entries if entry.filename == "photo.png")
    assert photo.status is Status.NOT_AN_EMBEDDING and photo.is_plain_image and not photo.is_problem
    report = encode_report(library, "a photo of a cat, mystyle, broken", conditioning=False)
    words = [(w["kind"], w["word"]) for w in report["positive"]["warnings"]]
    assert words == [("failed", "broken")]  # a real failed file still warns; the picture does not
    assert [e["keyword"] for e in report["embeddings"]] == ["mystyle"]
