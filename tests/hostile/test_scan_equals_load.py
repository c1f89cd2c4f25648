"""Class 3: what the header scan reports is exactly what a full load returns.

Both go through one parse of the container (the zip's central directory, checked against every local header).
Targeted cases rebuild the reported attack (an extra first local header, a duplicated ``data.pkl``) and its
relatives; a property test mutates real ``.pt``/``.safetensors``/PNG files and checks, for every mutant, that scan
and load either both refuse, or agree exactly on layout, family and each part's rows and width. The one allowed
difference: NaN/Inf values, which only a load reads (the background verifier catches those).
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch
from factories import sdxl_vectors, vectors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from isolated import scan_and_load, write_all
from safetensors.torch import save

from sd_embeddings.errors import EmbeddingError
from sd_embeddings.formats import decoding as formats
from sd_embeddings.records import EmbeddingData, Header

DEFAULT_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
SLOW_EXAMPLES = int(os.environ.get("FUZZ_SLOW_EXAMPLES", "3000"))
COUNT = {"examples": 0, "both_loaded": 0, "both_refused": 0, "values_only": 0}


def pt(rows: int, width: int, legacy: bool = False) -> bytes:
    out = io.BytesIO()
    torch.save({"string_to_param": {"*": vectors(rows, width)}, "name": "x", "step": 3}, out,
               _use_new_zipfile_serialization=not legacy)
    return out.getvalue()


def members(raw: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def rezip(items: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, blob in items:
            archive.writestr(name, blob)
    return out.getvalue()


def first_local_record(raw: bytes) -> bytes:
    """The first member's local header and data, as torch wrote them (with its data descriptor)."""
    second = raw.find(b"PK\x03\x04", 4)
    return raw[:second]


def with_duplicate_pickle(small: bytes, big: bytes) -> bytes:
    """The small file's members, then the big file's ``data.pkl`` and storage again under the same names."""
    extra = [(name, blob) for name, blob in members(big) if name.endswith(("data.pkl", "data/0"))]
    with pytest.warns(UserWarning):
        return rezip(members(small) + extra)


def shifted_offsets(raw: bytes, shift: int) -> bytes:
    """Add ``shift`` to every central-directory offset (after ``shift`` bytes were put in front of the file)."""
    data = bytearray(raw)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        (offset,) = struct.unpack_from("<I", data, at + 42)
        struct.pack_into("<I", data, at + 42, offset + shift)
        at = data.find(b"PK\x01\x02", at + 4)
    for signature, at, fmt in ((b"PK\x05\x06", 16, "<I"), (b"PK\x06\x06", 48, "<Q"), (b"PK\x06\x07", 8, "<Q")):
        record = data.rfind(signature)
        if record >= 0:  # torch writes zip64 end records too: their offsets move as well
            (offset,) = struct.unpack_from(fmt, data, record + at)
            struct.pack_into(fmt, data, record + at, offset + shift)
    return bytes(data)


def patched(raw: bytes, at: int, value: bytes) -> bytes:
    return raw[:at] + value + raw[at + len(value):]


def zip_attacks() -> dict[str, bytes]:
    small, big = pt(1, 768), pt(3, 1024)
    plain = rezip(members(small))  # Python's zipfile: no data descriptors, so local sizes must match
    data_pkl_at = plain.find(b"PK\x01\x02")
    renamed = plain.replace(b"archive/data.pkl", b"archive/data.pkX", 1)  # only the local header's copy
    overlap = plain
    for signature in (b"PK\x03\x04", b"PK\x01\x02"):  # grow data.pkl's sizes in both headers, into the next member
        at = overlap.find(signature)
        size_at = at + (18 if signature == b"PK\x03\x04" else 20)
        (size,) = struct.unpack_from("<I", overlap, size_at)
        overlap = patched(overlap, size_at, struct.pack("<II", size + 40, size + 40))
    return {
        "extra_first_header.pt": first_local_record(big) + small,
        "extra_first_header_fixed_offsets.pt": shifted_offsets(first_local_record(big) + small,
                                                               len(first_local_record(big))),
        "duplicate_data_pkl.pt": with_duplicate_pickle(small, big),
        "two_saves.pt": rezip(members(small) + [("other/data.pkl", members(big)[0][1])]),
        "renamed_local_header.pt": renamed,
        "overlapping_members.pt": overlap,
        "crc_mismatch.pt": patched(patched(plain, 14, b"\0\0\0\0"), data_pkl_at + 16, b"\0\0\0\0"),
        "junk_after_end.pt": plain + b"trailing",
        "encrypted_flag.pt": patched(plain, data_pkl_at + 8, b"\x01\x00"),
        "cut_directory.pt": small[:-60],
        "flipped_tensor_byte.pt": patched(small, small.find(b"archive/data/0") + 80, b"\xff"),  # CRC only
    }


def test_zip_container_attacks_are_refused_by_scan_and_load(tmp_path: Path) -> None:
    files = zip_attacks()
    outcomes = scan_and_load(write_all(tmp_path, files))
    for name in files:
        scan, load = outcomes[name]
        assert scan.status == load.status == "corrupt", (name, scan, load)
        assert "unexpected" not in scan.reason + load.reason
    assert "twice" in outcomes["duplicate_data_pkl.pt"][0].reason
    assert "2 PyTorch saves" in outcomes["two_saves.pt"][0].reason
    assert "local header disagrees" in outcomes["renamed_local_header.pt"][0].reason
    assert "overlaps" in outcomes["overlapping_members.pt"][0].reason
    assert "before its first member" in outcomes["extra_first_header_fixed_offsets.pt"][0].reason
    assert "CRC" in outcomes["crc_mismatch.pt"][1].reason
    assert "CRC" in outcomes["flipped_tensor_byte.pt"][0].reason


def test_valid_zips_written_by_torch_and_zipfile_still_load(tmp_path: Path) -> None:
    small = pt(2, 768)
    deflated = io.BytesIO()
    with zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, blob in members(small):
            archive.writestr(name, blob)
    files = {"torch.pt": small, "stored.pt": rezip(members(small)), "deflated.pt": deflated.getvalue()}
    for name, (scan, load) in scan_and_load(write_all(tmp_path, files)).items():
        assert scan.status == load.status == "loaded" and scan.parts == load.parts == {"": [2, 768]}, name


def _seeds() -> dict[str, bytes]:
    image = EmbeddingData(vectors(2, 768), "t")
    return {
        "zip.pt": pt(2, 768),
        "legacy.pt": pt(3, 1024, legacy=True),
        "x.safetensors": save({"emb_params": vectors(2, 768)}, metadata={"name": "x", "step": "7"}),
        "xl.safetensors": save(sdxl_vectors(2)),
        "text.png": formats.encode_image(image, "x", "text"),
        "pixels.png": formats.encode_image(image, "x", "pixels"),
    }


SEEDS = _seeds()
OTHER_PICKLE = members(pt(3, 1024))


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "local_header", "duplicate", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "local_header":  # another save's first local record, spliced in anywhere
            data[at:at] = first_local_record(pt(3, 1024))
        elif kind == "duplicate" and data[:4] == b"PK\x03\x04":
            try:
                items = members(bytes(data))
            except (zipfile.BadZipFile, ValueError, EOFError, OSError):
                continue
            with pytest.warns(UserWarning):
                data = bytearray(rezip(items + [draw(st.sampled_from(OTHER_PICKLE))]))
        elif kind == "delete":
            del data[at: at + draw(st.integers(1, 64))]
    return bytes(data)


def _outcome(call: object) -> EmbeddingData | Header | EmbeddingError:
    try:
        return call()  # type: ignore[operator]
    except EmbeddingError as e:  # anything else fails the test
        return e


def check_agreement(raw: bytes, name: str, folder: str) -> None:
    COUNT["examples"] += 1
    path = os.path.join(folder, name)
    with open(path, "wb") as handle:
        handle.write(raw)
    scan = _outcome(lambda: formats.scan_file(path, len(raw)))
    load = _outcome(lambda: formats.decode(raw, path))
    if isinstance(scan, EmbeddingError) and isinstance(load, EmbeddingError):
        COUNT["both_refused"] += 1
        return
    assert not isinstance(scan, EmbeddingError), f"scan refused what load accepts: {scan.reason} / {load.shape}"
    if isinstance(load, EmbeddingError):
        COUNT["values_only"] += 1
        assert "NaN or infinite" in load.reason, f"scan accepted {scan.shape}, load refused: {load.reason}"
        return
    COUNT["both_loaded"] += 1
    assert scan.shape.parts == load.shape.parts and scan.shape.family is load.shape.family, (scan, load.shape)
    assert scan.layout == load.layout and (scan.name, scan.step) == (load.name, load.step)


def _run(name: str, examples: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(raw=mutated(SEEDS[name]))
        def run(raw: bytes) -> None:
            check_agreement(raw, name, folder)

        run()


def test_seeds_scan_and_load_alike(tmp_path: Path) -> None:
    for name, raw in SEEDS.items():
        check_agreement(raw, name, str(tmp_path))
    assert COUNT["both_loaded"] >= len(SEEDS)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutated_files_scan_exactly_as_they_load(name: str) -> None:
    _run(name, DEFAULT_EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutated_files_scan_exactly_as_they_load_long_run(name: str) -> None:
    _run(name, SLOW_EXAMPLES)


@pytest.fixture(scope="module", autouse=True)
def _report_count() -> object:
    yield
    print("\nscan/load agreement: {examples} examples, {both_loaded} both loaded, {both_refused} both refused, "
          "{values_only} refused by load for NaN/Inf only".format(**COUNT))
