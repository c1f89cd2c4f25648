"""Class 4 and the state_dict case of class 10: every failure while decoding one file is that file's status, with
a precise reason; a benign torch ``state_dict`` is *not-an-embedding*, never *unsafe*.

The inputs are the reported escapes (``shape: [true, 768]``, a 5000-digit number in metadata, ``step`` = inf or
a tensor, stride 2**64 ...) written at test time, decoded by scan and load in a child process.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from isolated import scan_and_load, write_all
from payloads import png, safetensors_raw

from sd_embeddings.errors import CorruptFileError, NotAnEmbeddingError
from sd_embeddings.formats import budget
from sd_embeddings.formats import decoding as formats

VECTOR = np.ones(768, "<f4").tobytes()
ONE_ROW = {"dtype": "F32", "shape": [1, 768], "data_offsets": [0, 3072]}


def _ti_png(document: bytes) -> bytes:
    return png(text_chunks={"sd-ti-embedding": base64.b64encode(document).decode()})


def escape_cases() -> dict[str, tuple[bytes, str]]:
    """file name -> (bytes, a phrase the refusal must contain)."""
    digits = b"9" * 5000
    return {
        "bool_shape.safetensors": (safetensors_raw({"emb_params": dict(ONE_ROW, shape=[True, 768])}, VECTOR),
                                   "not made of whole numbers"),
        "digits_in_metadata.safetensors": (safetensors_raw(None, VECTOR, header_bytes=b'{"__metadata__": {"step": '
                                           + digits + b'}, "emb_params": {"dtype": "F32", "shape": [1, 768], '
                                           b'"data_offsets": [0, 3072]}}'), "thousands of digits"),
        "digits_in_png.png": (_ti_png(b'{"step": ' + digits + b"}"), "not valid embedding JSON"),
        "ragged_png.png": (_ti_png(b'{"string_to_param": {"*": {"TORCHTENSOR": [[1.0], [2.0, 3.0]]}}}'),
                           "not valid embedding JSON"),
        "offsets_2_64.safetensors": (safetensors_raw({"emb_params": dict(ONE_ROW, data_offsets=[2**64, 2**64 + 3072])},
                                                     VECTOR), "points outside the file"),
    }


def test_reported_escapes_become_precise_reasons(tmp_path: Path) -> None:
    cases = escape_cases()
    outcomes = scan_and_load(write_all(tmp_path, {name: raw for name, (raw, _) in cases.items()}))
    for name, (_, phrase) in cases.items():
        scan, load = outcomes[name]
        for outcome in (scan, load):
            assert outcome.status == "corrupt" and phrase in outcome.reason, (name, outcome)
            assert "unexpected" not in outcome.reason and "broken (" not in outcome.reason, (name, outcome)


@pytest.mark.parametrize("error, phrase", [
    (RecursionError(), "nests too deeply"), (MemoryError(), "more memory"), (OverflowError(), "too large"),
    (ValueError("Exceeds the limit (4300 digits) for integer string conversion"), "thousands of digits"),
    (RuntimeError("b'\\x00secret'"), "is broken (RuntimeError)"), (TypeError("x"), "is broken (TypeError)"),
])
def test_the_guard_names_the_file_and_never_quotes_the_message(error: Exception, phrase: str) -> None:
    with pytest.raises(CorruptFileError) as caught, budget.classified("f.pt", "PyTorch file"):
        raise error
    assert caught.value.path == "f.pt" and phrase in caught.value.reason and "secret" not in caught.value.reason
    with pytest.raises(NotAnEmbeddingError) as caught, budget.classified("f.pt", "PyTorch file"):
        raise NotAnEmbeddingError(None, "helper without a path")
    assert caught.value.path == "f.pt"  # helpers that do not know the file get it filled in


class VAEApprox(torch.nn.Module):
    """Shaped like the WebUI's VAE-approx model (conv1..conv8), plus a nested block for dotted module names."""

    def __init__(self) -> None:
        super().__init__()
        for i, (cin, cout) in enumerate([(4, 8), (8, 16), (16, 32), (32, 64), (64, 32), (32, 16), (16, 8), (8, 3)]):
            setattr(self, f"conv{i + 1}", torch.nn.Conv2d(cin, cout, (3, 3) if i < 7 else (1, 1)))
        self.decoder = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Sequential(torch.nn.Linear(4, 2)))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_state_dict_is_not_an_embedding(tmp_path: Path, legacy: bool) -> None:
    out = io.BytesIO()
    torch.save(VAEApprox().state_dict(), out, _use_new_zipfile_serialization=not legacy)
    (scan, load), = scan_and_load(write_all(tmp_path, {"model.pt": out.getvalue()})).values()
    for outcome in (scan, load):
        assert outcome.status == "not-an-embedding", outcome
        assert "state_dict of 20 tensors" in outcome.reason and "conv1.weight" in outcome.reason, outcome


def test_state_dict_keys_are_shown_printable(tmp_path: Path) -> None:
    weights = {f"layer\x1b[31m{i}.weight": torch.ones(2) for i in range(3)}
    out = io.BytesIO()
    torch.save(weights, out)
    with pytest.raises(NotAnEmbeddingError) as caught:
        formats.decode(out.getvalue(), "keys.pt")
    assert "\x1b" not in caught.value.reason and "layer?[31m0.weight" in caught.value.reason
