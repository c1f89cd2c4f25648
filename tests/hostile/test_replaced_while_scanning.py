"""A file replaced between the folder listing and the scan's read (a bigger version rewritten in place by a
download or a trainer) is read at its real size, never cut at the listed one and called a broken zip. Real
torch files written at test time; the listing's size is passed as the walker would."""

from __future__ import annotations

import torch
from factories import write_a1111_pt

from sd_embeddings.formats import decoding


def test_scan_reads_the_file_it_opened_not_the_size_it_listed(tmp_path):
    path = tmp_path / "x.pt"
    write_a1111_pt(path, torch.ones(1, 768))
    listed = path.stat().st_size
    write_a1111_pt(path, torch.ones(8, 768))  # larger: a head cut at ``listed`` misses the zip's end record
    assert decoding.scan_file(str(path), listed).shape.parts == {"": (8, 768)}
