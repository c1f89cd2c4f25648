"""A name stored inside a picture takes no other file's keyword by looking different to us and alike to the
tokenizer (HTML entity, control character, full-width letters): such a name is ignored and the picture keeps its
own stem. Plain stored names still work. Real PNG embeddings and safetensors written at test time."""

from __future__ import annotations

import pytest
from factories import vectors, write_image, write_safetensors

from sd_embeddings.library import Library
from sd_embeddings.records import Family


@pytest.mark.parametrize("claimed", ["&#103;oodemb", "&#x67;oodemb", "\x1bgoodemb", "\x00goodemb", "ｇoodemb",
                                     " goodemb", "good\u200bemb"])
def test_lookalike_stored_names_keep_their_stem(tmp_path, claimed):
    write_safetensors(tmp_path / "emb" / "goodemb.safetensors", {"emb_params": vectors(1)})
    write_image(tmp_path / "emb" / "a.png", vectors(4, seed=9), claimed)
    library = Library([tmp_path / "emb"], family=Family.SD1, background_hashing=False)
    library.refresh()
    assert library.get("goodemb").path.endswith("goodemb.safetensors")
    assert library.get("a").path.endswith("a.png")


def test_a_plain_stored_name_is_the_keyword(tmp_path):
    write_image(tmp_path / "emb" / "download (3).png", vectors(2), "watercolor-style")
    library = Library([tmp_path / "emb"], family=Family.SD1, background_hashing=False)
    library.refresh()
    assert library.get("watercolor-style") is not None
