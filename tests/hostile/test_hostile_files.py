"""Hostile safetensors, images, tensor values, file names, symlinks and files changing while a scan runs."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from factories import vectors, write_a1111_pt, write_safetensors
from hostile_kit import Folder, decode_only, peak_memory
from payloads import float_bytes, png, png_chunk, png_declaring, safetensors_raw, ti_chunk
from PIL import Image

from sd_embeddings.formats import image_format
from sd_embeddings.library import scanning
from sd_embeddings.library.containment import LINK_OUT, SYSTEM_REASON
from sd_embeddings.records import Status

F32 = float_bytes(768)


def _spec(offsets: list, shape: list | None = None, dtype: str = "F32") -> dict:
    return {"dtype": dtype, "shape": shape if shape is not None else [1, 768], "data_offsets": offsets}


SAFETENSORS = {
    "overlap.safetensors": (safetensors_raw({"clip_l": _spec([0, 3072]), "clip_g": _spec([1024, 4096], [1, 768])},
                                            F32 + F32[:1024]), "overlap"),
    "negative_offset.safetensors": (safetensors_raw({"emb_params": _spec([-4, 3068])}, F32), "points outside"),
    "huge_offset.safetensors": (safetensors_raw({"emb_params": _spec([0, 2**62])}, F32), "points outside"),
    "header_beyond_file.safetensors": (safetensors_raw({"emb_params": _spec([0, 3072])}, F32, declared=2**40),
                                       "header claims"),
    "header_negative.safetensors": (safetensors_raw({}, b"", declared=-1), "header claims"),
    "not_json.safetensors": (safetensors_raw(None, F32, header_bytes=b"{not json at all}"), "not valid JSON"),
    "deep_json.safetensors": (safetensors_raw(None, header_bytes=b'{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
                              "not valid JSON"),
    "not_utf8.safetensors": (safetensors_raw(None, header_bytes=b'{"\xff\xfe": 1}'), "not valid JSON"),
    "json_list.safetensors": (safetensors_raw([1, 2, 3]), "not a JSON object"),
    "bad_dtype.safetensors": (safetensors_raw({"emb_params": _spec([0, 3072], dtype="F32; rm -rf /")}, F32),
                              "unknown dtype"),
    "object_dtype.safetensors": (safetensors_raw({"emb_params": _spec([0, 3072], dtype="O")}, F32), "unknown dtype"),
    "shape_mismatch.safetensors": (safetensors_raw({"emb_params": _spec([0, 3072], [2, 768])}, F32), "needs"),
    "negative_shape.safetensors": (safetensors_raw({"emb_params": _spec([0, 3072], [-1, 768])}, F32),
                                   "invalid shape"),
    "huge_shape.safetensors": (safetensors_raw({"emb_params": _spec([0, 3072], [2**50, 2**50])}, F32),
                               "invalid shape"),
    "int_tensor.safetensors": (safetensors_raw({"emb_params": _spec([0, 3072], [1, 768], "I32")}, F32), "not floats"),
    "truncated.safetensors": (safetensors_raw({"emb_params": _spec([0, 3072])}, F32[:100]), "points outside"),
}


def test_hostile_safetensors(folder: Folder) -> None:
    for name, (raw, _) in SAFETENSORS.items():
        folder.add(name, raw)
    library = folder.scan()
    for name, (_, reason) in SAFETENSORS.items():
        entry = folder.entry(library, name)
        assert entry.status in (Status.CORRUPT, Status.NOT_AN_EMBEDDING), (name, entry.reason)
        assert reason in entry.reason, (name, entry.reason)


def _values(tensor: torch.Tensor) -> bytes:
    out = io.BytesIO()
    torch.save({"emb_params": tensor}, out)
    return out.getvalue()


def test_hostile_tensor_values(folder: Folder) -> None:
    nan, inf = vectors(2, 768), vectors(2, 768)
    nan[1, 5], inf[0, 0] = float("nan"), float("-inf")
    cases = {
        "nan.pt": (_values(nan), Status.CORRUPT, "NaN or infinite"),
        "inf.pt": (_values(inf), Status.CORRUPT, "NaN or infinite"),
        "zero_rows.pt": (_values(torch.zeros(0, 768)), Status.CORRUPT, "no vectors"),
        "zero_width.pt": (_values(torch.zeros(3, 0)), Status.CORRUPT, "no vectors"),
        "too_many.pt": (_values(torch.zeros(1001, 768)), Status.NOT_AN_EMBEDDING, "1,001 vectors"),
        "width_1.pt": (_values(torch.ones(2, 1)), Status.INCOMPATIBLE, "matches no known model"),
        "width_4096.pt": (_values(torch.ones(1, 4096)), Status.INCOMPATIBLE, "matches no known model"),
        "width_100000.pt": (_values(torch.ones(1, 100_000)), Status.NOT_AN_EMBEDDING, "no text encoder"),
        "int_values.pt": (_values(torch.ones(2, 768, dtype=torch.int64)), Status.NOT_AN_EMBEDDING, "not floats"),
        "scalar.pt": (_values(torch.tensor(1.0)), Status.NOT_AN_EMBEDDING, "expected [vectors, width]"),
    }
    for name, (raw, _, _) in cases.items():
        folder.add(name, raw)
    write_safetensors(folder.path / "nan_st.safetensors", {"emb_params": nan})
    library = folder.scan()
    for name, (_, status, reason) in cases.items():
        entry = folder.entry(library, name)
        assert entry.status is status and reason in entry.reason, (name, entry.status, entry.reason)
    entry = folder.entry(library, "nan_st.safetensors")
    assert entry.status is Status.CORRUPT and "NaN" in entry.reason


def pixel_png(payload: bytes, height: int = 8) -> bytes:
    """Bytes hidden in pixels exactly as the WebUI encodes them (nibbles XOR-ed with its LCG)."""
    data = np.frombuffer(payload, np.uint8)
    size = data.size + (height - data.size % height)
    size += height * 3 - size % (height * 3)
    blocks = [image_format._xor_block(np.resize(n, size).reshape((height, -1, 3))) | 0x40  # noqa: SLF001
              for n in (data & 0x0F, data >> 4)]
    low, high = (Image.fromarray(b.astype(np.uint8), "RGB") for b in blocks)
    canvas = Image.new("RGB", (low.width + high.width + 2 + 8, height), (0, 0, 0))
    canvas.paste(low, (0, 0))
    canvas.paste(Image.new("RGB", (8, height), (200, 200, 200)), (low.width + 1, 0))
    canvas.paste(high, (low.width + 10, 0))
    out = io.BytesIO()
    canvas.save(out, "PNG")
    return out.getvalue()


def test_hostile_images(folder: Folder) -> None:
    good = png(text_chunks={"sd-ti-embedding": ti_chunk({"name": "x", "string_to_param": {
        "*": {"TORCHTENSOR": [[0.5] * 768]}}})})
    corrupt = bytearray(png(size=(64, 64)))  # no text chunk: the pixels have to be decoded
    idat = corrupt.find(b"IDAT")
    corrupt[idat + 10: idat + 20] = b"\xff" * 10
    bomb_inflate = zlib.compress(b"[" + b"0," * (40 * 2**20) + b"0]", 9)
    cases = {
        "corrupt_chunk.png": (bytes(corrupt), "damaged"),
        "bad_crc.png": (png()[:33] + png_chunk(b"tEXt", b"sd-ti-embedding\x00AAAA", crc=1) + png()[33:],
                        "readable image"),
        "bomb_dims.png": (png_declaring(100_000, 100_000), "decompression bomb"),
        "big_dims.png": (png_declaring(8000, 8000), "too large"),
        "garbage_chunk.png": (png(text_chunks={"sd-ti-embedding": "!!!not base64 at all!!!"}), "not base64"),
        "json_not_object.png": (png(text_chunks={"sd-ti-embedding": ti_chunk([1, 2])}), "does not hold"),
        "deep_json.png": (png(text_chunks={"sd-ti-embedding": base64.b64encode(b"[" * 50_000).decode()}),
                          "not valid embedding JSON"),
        "ragged_tensor.png": (png(text_chunks={"sd-ti-embedding": ti_chunk({"string_to_param": {
            "*": {"TORCHTENSOR": [[1.0], [1.0, 2.0]]}}})}), "not valid embedding JSON"),
        "pixel_inflate.png": (pixel_png(bomb_inflate, height=64), "expands beyond 16 MB"),
        "truncated.png": (good[: len(good) // 2], "image"),
        "fake_png.png": (b"\x89PNG\r\n\x1a\n" + os.urandom(200), "readable image"),
    }
    for name, (raw, _) in cases.items():
        folder.add(name, raw)
    with peak_memory() as memory:
        library = folder.scan()
    assert memory["growth_mib"] < 400, memory
    for name, (_, reason) in cases.items():
        entry = folder.entry(library, name)
        assert entry.status in (Status.CORRUPT, Status.NOT_AN_EMBEDDING, Status.UNSUPPORTED), (name, entry.reason)
        assert reason in entry.reason, (name, entry.reason)
        assert "unexpected error" not in entry.reason, (name, entry.reason)
    assert json  # payload helpers above build the JSON documents


NAMES = ["<img src=x onerror=alert(1)>.pt", "\"quoted' name\".pt", "new\nline.pt", "tab\tand;semicolon.pt",
         "x" * 240 + ".pt", "ünïcödé 名前.pt", "../escape.pt".replace("/", "_"), ".hidden.pt", "-rf.pt"]


def test_hostile_file_names(folder: Folder) -> None:
    expected = {}
    for i, name in enumerate(NAMES):
        vec = vectors(1, 768, seed=100 + i)
        write_a1111_pt(folder.path / name, vec)
        expected[name] = vec
    raw_name = b"bad\xff\xfe" + b"bytes.pt"
    vec = vectors(1, 768, seed=99)
    buffer = io.BytesIO()
    torch.save({"emb_params": vec}, buffer)
    with open(os.path.join(os.fsencode(folder.path), raw_name), "wb") as handle:
        handle.write(buffer.getvalue())
    expected[os.fsdecode(raw_name)] = vec
    folder.good.update(expected)
    library = folder.scan()
    for name in expected:
        entry = folder.entry(library, name)
        assert entry.keyword == os.path.splitext(name)[0]
        assert os.path.exists(os.fsencode(entry.path))


def test_symlinks_out_of_the_folder_and_in_a_loop(folder: Folder, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    write_a1111_pt(outside / "shared.pt", vectors(1, 768, seed=7))
    os.symlink(outside, folder.path / "linked_dir")
    os.symlink(folder.path, folder.path / "loop")
    (folder.path / "sub").mkdir()
    os.symlink(folder.path / "sub", folder.path / "sub" / "self")
    os.symlink("/dev/zero", folder.path / "zero.pt")
    os.symlink(tmp_path / "nowhere.pt", folder.path / "dangling.pt")
    os.mkfifo(folder.path / "fifo.pt")
    library = folder.scan()
    names = sorted(Path(e.path).name for e in library.entries)
    assert "shared.pt" not in names and "fifo.pt" not in names  # a folder link out is not walked
    assert [(s.relpath, s.reason) for s in library.skipped] == [("linked_dir", LINK_OUT)]
    refused = {Path(e.path).name: (e.status, e.reason) for e in library.entries if e.status is Status.UNSUPPORTED}
    assert refused == {"zero.pt": (Status.UNSUPPORTED, SYSTEM_REASON), "dangling.pt": (Status.UNSUPPORTED, LINK_OUT)}


@pytest.mark.parametrize("change", ["delete", "truncate", "rewrite_garbage", "replace_with_dir"])
def test_files_changing_while_a_scan_runs(folder: Folder, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    victim = write_a1111_pt(folder.path / "victim.pt", vectors(2, 768, seed=11))
    real_walk = scanning.walk_folders

    def walk_then_change(roots):  # the listing is taken, then the file changes before it is read
        found = real_walk(roots)
        if change == "delete":
            victim.unlink()
        elif change == "truncate":
            victim.write_bytes(victim.read_bytes()[:50])
        elif change == "rewrite_garbage":
            victim.write_bytes(os.urandom(2000))
        else:
            victim.unlink()
            victim.mkdir()
        return found

    monkeypatch.setattr("sd_embeddings.library.library.walk_folders", walk_then_change)
    library = folder.scan()
    entry = folder.entry(library, "victim.pt")
    assert entry.status in (Status.CORRUPT, Status.NOT_AN_EMBEDDING), entry
    assert entry.reason and "unexpected error" not in entry.reason, entry.reason


def test_files_rewritten_by_another_thread_during_scans(folder: Folder) -> None:
    victim = folder.path / "flapping.pt"
    stop = threading.Event()

    def flap() -> None:
        vec = vectors(2, 768, seed=12)
        while not stop.is_set():
            write_a1111_pt(victim, vec)
            victim.write_bytes(b"PK\x03\x04" + os.urandom(64))
            victim.unlink(missing_ok=True)

    writer = threading.Thread(target=flap, daemon=True)
    writer.start()
    try:
        for _ in range(15):
            folder.scan()
    finally:
        stop.set()
        writer.join(5)


def test_decoders_raise_only_embedding_errors_for_each_bad_input(tmp_path: Path) -> None:
    for name, (raw, _) in SAFETENSORS.items():
        assert decode_only(raw, name) is not None
    assert decode_only(b"\x80" + b"\x00" * 10, "x.pt") is not None
