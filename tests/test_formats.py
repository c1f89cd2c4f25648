"""Every format the WebUI accepts, decoded from real files written by torch, safetensors and Pillow."""

from __future__ import annotations

import io
import pickle
import struct

import pytest
import torch
from factories import sdxl_vectors, vectors, write_a1111_pt, write_diffusers_bin, write_image, write_safetensors
from PIL import Image

from sd_embeddings.errors import CorruptFileError, NotAnEmbeddingError, UnsafeFileError, UnsupportedFileError
from sd_embeddings.formats import decoding as formats
from sd_embeddings.formats import image_format
from sd_embeddings.records import EmbeddingData, Family


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("parameter_dict", [False, True], ids=["dict", "ParameterDict"])
def test_a1111_pt_both_pickle_layouts(tmp_path, legacy, parameter_dict):
    vec = vectors(3)
    path = write_a1111_pt(tmp_path / "emb.pt", vec, legacy=legacy, parameter_dict=parameter_dict)
    data = formats.decode_file(path)
    assert torch.equal(data.vec, vec)
    assert data.layout == "pt:a1111"
    assert (data.step, data.sd_checkpoint, data.sd_checkpoint_name, data.name) == (100, "abc123", "model", "emb")
    assert data.shape.family is Family.SD1 and data.shape.vectors == 3


def test_half_precision_and_1d_vectors(tmp_path):
    write_a1111_pt(tmp_path / "one.pt", vectors(1)[0])  # a 1-D tensor is one vector (the WebUI forgets this)
    one = formats.decode_file(tmp_path / "one.pt")
    assert one.vec.shape == (1, 768)
    half = vectors(4, 1024).half()
    write_safetensors(tmp_path / "half.safetensors", {"emb_params": half})
    data = formats.decode_file(tmp_path / "half.safetensors")
    assert data.vec.dtype == torch.float32 and torch.equal(data.vec, half.float())
    assert data.shape.family is Family.SD2


@pytest.mark.parametrize("key", ["emb_params", "anything", "<my-token>"])
def test_safetensors_single_tensor(tmp_path, key):
    vec = vectors(5)
    write_safetensors(tmp_path / "x.safetensors", {key: vec})
    data = formats.decode_file(tmp_path / "x.safetensors")
    assert torch.equal(data.vec, vec) and data.shape.vectors == 5


def test_sdxl_safetensors_and_metadata(tmp_path):
    parts = sdxl_vectors(8)
    write_safetensors(tmp_path / "xl.safetensors", parts, {"step": "42", "name": "stored"})
    data = formats.decode_file(tmp_path / "xl.safetensors")
    assert set(data.vec) == {"clip_l", "clip_g"}
    assert torch.equal(data.vec["clip_g"], parts["clip_g"])
    assert data.shape.family is Family.SDXL and data.shape.width == 2048 and data.shape.vectors == 8
    assert data.step == 42


def test_sdxl_row_mismatch_is_corrupt(tmp_path):
    write_safetensors(tmp_path / "bad.safetensors", {"clip_l": vectors(2), "clip_g": vectors(3, 1280)})
    with pytest.raises(CorruptFileError, match="clip_l has 2 vectors but clip_g has 3"):
        formats.decode_file(tmp_path / "bad.safetensors")


def test_diffusers_learned_embeds(tmp_path):
    vec = vectors(1)[0]
    write_diffusers_bin(tmp_path / "learned_embeds.bin", "<cat-toy>", vec)
    data = formats.decode_file(tmp_path / "learned_embeds.bin")
    assert data.layout == "pt:diffusers" and torch.equal(data.vec[0], vec)


@pytest.mark.parametrize("carrier", ["text", "pixels"])
def test_png_embeddings_round_trip(tmp_path, carrier):
    vec = vectors(4)
    write_image(tmp_path / "card.png", vec, "stored-name", carrier)
    data = formats.decode_file(tmp_path / "card.png")
    assert data.name == "stored-name"
    assert torch.allclose(data.vec, vec)


def test_pixel_encoding_survives_lossless_webp_and_sdxl(tmp_path):
    parts = sdxl_vectors(2)
    png = formats.encode_image(EmbeddingData(parts, "x"), "xl", carrier="pixels")
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).save(out, format="WEBP", lossless=True)
    (tmp_path / "xl.webp").write_bytes(out.getvalue())
    data = formats.decode_file(tmp_path / "xl.webp")
    assert data.shape.family is Family.SDXL and torch.allclose(data.vec["clip_l"], parts["clip_l"])


def test_plain_picture_is_not_an_embedding(tmp_path):
    Image.new("RGB", (64, 64), (200, 10, 10)).save(tmp_path / "photo.png")
    with pytest.raises(NotAnEmbeddingError, match="plain image"):
        formats.decode_file(tmp_path / "photo.png")


def test_avif_without_plugin_names_the_package(tmp_path):
    path = tmp_path / "x.avif"
    path.write_bytes(b"\x00\x00\x00\x1cftypavif" + b"\x00" * 64)
    try:
        formats.decode_file(path)
    except UnsupportedFileError as e:
        assert "pillow-avif-plugin" in e.reason
    except (NotAnEmbeddingError, CorruptFileError):
        pass  # a plugin is installed and read the garbage: still a clear error, never a crash


def test_multi_term_and_unknown_layouts(tmp_path):
    torch.save({"string_to_param": {"a": vectors(1), "b": vectors(1)}}, tmp_path / "multi.pt")
    with pytest.raises(NotAnEmbeddingError, match="multiple terms"):
        formats.decode_file(tmp_path / "multi.pt")
    write_safetensors(tmp_path / "lora.safetensors", {"lora_unet_down.lora_up.weight": vectors(4, 4),
                                                      "lora_unet_down.lora_down.weight": vectors(4, 4)})
    with pytest.raises(NotAnEmbeddingError, match="LoRA"):
        formats.decode_file(tmp_path / "lora.safetensors")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(NotAnEmbeddingError, match="not an embedding dictionary"):
        formats.decode_file(tmp_path / "list.pt")


class _Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    payload = {"string_to_param": {"*": _Boom(str(marker))}}
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(payload, protocol=2))
    torch.save(payload, tmp_path / "evil_zip.pt")
    for name in ("evil.pt", "evil_zip.pt"):
        with pytest.raises(UnsafeFileError, match="io.open|builtins.open"):
            formats.decode_file(tmp_path / name)
    assert not marker.exists()


def test_truncated_files_are_corrupt(tmp_path):
    write_a1111_pt(tmp_path / "full.pt", vectors(4))
    raw = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError):
        formats.decode_file(tmp_path / "cut.pt")
    write_safetensors(tmp_path / "full.safetensors", {"emb_params": vectors(4)})
    raw = (tmp_path / "full.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(raw[:-100])
    with pytest.raises(CorruptFileError, match="points outside the file"):
        formats.decode_file(tmp_path / "cut.safetensors")


def test_safetensors_header_claiming_gigabytes_is_refused_before_reading(tmp_path):
    (tmp_path / "huge.safetensors").write_bytes(struct.pack("<Q", 8 * 2**30) + b"{}")
    with pytest.raises(CorruptFileError, match="header claims 8,589,934,592 bytes"):
        formats.decode_file(tmp_path / "huge.safetensors")


def test_content_sniffing_beats_extension(tmp_path):
    vec = vectors(2)
    write_safetensors(tmp_path / "renamed.PT", {"emb_params": vec})  # a safetensors file with a .PT name
    assert torch.equal(formats.decode_file(tmp_path / "renamed.PT").vec, vec)
    assert formats.format_of("X.SafeTensors") == "safetensors" and formats.format_of("a.PNG") == "image"
    assert formats.format_of("notes.txt") is None


def test_safetensors_whose_header_length_starts_with_the_pickle_byte(tmp_path):
    """A header of 128 (mod 256) bytes starts the file with 0x80, the pickle protocol byte: still safetensors."""
    vec = vectors(1)
    for pad in range(64):
        path = write_safetensors(tmp_path / "x.safetensors", {"emb_params": vec}, {"note": "n" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    assert torch.equal(formats.decode_file(path).vec, vec)
    assert formats.scan_file(str(path), path.stat().st_size).shape.vectors == 1


def test_nan_vectors_are_corrupt(tmp_path):
    vec = vectors(3)
    vec[1, 5] = float("nan")
    write_safetensors(tmp_path / "nan.safetensors", {"emb_params": vec})
    with pytest.raises(CorruptFileError, match="1 of 3 vectors contain NaN"):
        formats.decode_file(tmp_path / "nan.safetensors")


def test_written_safetensors_carry_metadata(tmp_path):
    data = EmbeddingData(sdxl_vectors(3), "pt:sdxl", step=7, sd_checkpoint="ckpt")
    formats.write_safetensors(data, tmp_path / "out.safetensors", "my-name")
    back = formats.decode_file(tmp_path / "out.safetensors")
    assert back.name == "my-name" and back.step == 7 and back.sd_checkpoint == "ckpt"
    assert torch.equal(back.vec["clip_g"], data.vec["clip_g"])


def test_lcg_stream_matches_the_plain_recurrence():
    seed, expected = 0, []
    for _ in range(10_000):
        seed = (1664525 * seed + 1013904223) % 2**32
        expected.append(seed % 255)
    assert image_format._lcg_stream(10_000).tolist() == expected
