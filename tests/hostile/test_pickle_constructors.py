"""Class 1: nothing from a pickle reaches a numpy or torch constructor that trusts its arguments.

Every input is a pickle written opcode by opcode at test time. Each set runs in a child process (``isolated``),
so a native crash fails the test instead of killing pytest. The protections under test: numpy dtypes by plain
numeric name only and no BUILD on them beyond a byte order, scalars decoded from bytes of exactly their size,
tensor sizes/strides/offsets checked as plain ints against the storage, every allowed callable type-checked.
"""

from __future__ import annotations

import io
import string
from pathlib import Path

import numpy as np
import pytest
import torch
from isolated import scan_and_load, write_all
from payloads import BUILD, MARK, TUPLE, as_dict, call, float_bytes, glob, integer, pickle_file, text, torch_zip

from sd_embeddings.formats import decoding as formats

DATA = {"archive/data/0": float_bytes(768)}


def big(value: int) -> bytes:
    """LONG1/LONG4: any int (2**64, -1, 5000 digits) as the pickle's own integer opcode."""
    size = max(1, (value.bit_length() + 8) // 8)
    head = b"\x8a" + bytes([size]) if size < 256 else b"\x8b" + size.to_bytes(4, "little")
    return head + value.to_bytes(size, "little", signed=True)


def ints(*values: bytes) -> bytes:
    return MARK + b"".join(values) + TUPLE


def storage_pid(numel: bytes = integer(768), kind: str = "FloatStorage") -> bytes:
    return MARK + text("storage") + glob("torch", kind) + text("0") + text("cpu") + numel + TUPLE + b"Q"


def rebuild(size: bytes, stride: bytes, offset: bytes = integer(0), numel: bytes = integer(768),
            grad: bytes = b"\x89", hooks: bytes | None = None) -> bytes:
    hooks = call(glob("collections", "OrderedDict")) if hooks is None else hooks
    return call(glob("torch._utils", "_rebuild_tensor_v2"), storage_pid(numel), offset, size, stride, grad, hooks)


def pt(body: bytes) -> bytes:
    return torch_zip(pickle_file(as_dict("emb_params", body)), DATA)


def dtype(name: str) -> bytes:
    return call(glob("numpy", "dtype"), text(name), b"\x89", b"\x88")


def dtype_state(*fields: bytes) -> bytes:
    return MARK + b"".join(fields) + TUPLE + BUILD


PLAIN_STATE = (integer(3), text("<"), b"N", b"N", b"N", integer(-1), integer(-1), integer(0))


def scalar(dtype_body: bytes, data: bytes) -> bytes:
    encoded = call(glob("_codecs", "encode"), text(data.decode("latin1")), text("latin1"))
    return call(glob("numpy.core.multiarray", "scalar"), dtype_body, encoded)


def numpy_attacks() -> dict[str, bytes]:
    """The reported crash (void dtype, a field at offset 2**40, then scalar) and its relatives."""
    fields = b"}" + text("a") + MARK + dtype("S24") + big(2**40) + TUPLE + b"s"
    structured = (integer(3), text("|"), b"N", ints(text("a")), fields, integer(8), integer(1), integer(16))
    heap_read = (integer(3), text("|"), b"N", ints(text("a")),
                 b"}" + text("a") + MARK + dtype("f4") + integer(2) + TUPLE + b"s", integer(8), integer(1),
                 integer(16))
    return {
        "void_field_far.pt": pt(scalar(dtype("V8") + dtype_state(*structured), b"\0" * 8)),
        "f8_given_fields.pt": pt(scalar(dtype("f8") + dtype_state(*heap_read), b"\0" * 8)),
        "string_dtype.pt": pt(scalar(dtype("S24"), b"\0" * 24)),
        "object_dtype.pt": pt(scalar(dtype("O"), b"\0" * 8)),
        "unicode_dtype.pt": pt(scalar(dtype("U4"), b"\0" * 16)),
        "dtype_itemsize_state.pt": pt(scalar(dtype("f4") + dtype_state(*PLAIN_STATE[:5], integer(4096),
                                                                        integer(-1), integer(0)), b"\0" * 4)),
        "scalar_short_data.pt": pt(scalar(dtype("f8"), b"\0" * 3)),
        "scalar_long_data.pt": pt(scalar(dtype("i8") + dtype_state(*PLAIN_STATE), b"\0" * 64)),
        "scalar_text_data.pt": pt(call(glob("numpy.core.multiarray", "scalar"), dtype("f4"), text("abcd"))),
        "scalar_no_data.pt": pt(call(glob("numpy._core.multiarray", "scalar"), dtype("f4"))),
        "dtype_not_text.pt": pt(call(glob("numpy", "dtype"), integer(5))),
        "dtype_set_twice.pt": pt(dtype("f4") + dtype_state(*PLAIN_STATE) + dtype_state(*PLAIN_STATE[:7], b"N")),
        "array_bigger_than_data.pt": pt(
            call(glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"), ints(integer(0)),
                 b"C\x01b") + MARK + integer(1) + ints(big(2**30)) + dtype("f4") + b"\x89"
            + b"C\x04" + b"\0" * 4 + TUPLE + BUILD),
    }


def tensor_attacks() -> dict[str, bytes]:
    """Sizes, strides, offsets and storage counts that are not plain in-range ints."""
    one = ints(integer(768))
    return {
        "stride_2_64.pt": rebuild(ints(integer(1), integer(768)), ints(big(2**64), integer(1))),
        "size_2_64_zero.pt": rebuild(ints(integer(0), big(2**64)), ints(integer(1), integer(1))),
        "offset_2_64.pt": rebuild(one, ints(integer(1)), offset=big(2**64)),
        "negative_offset.pt": rebuild(one, ints(integer(1)), offset=integer(-1)),
        "negative_size.pt": rebuild(ints(integer(-768)), ints(integer(1))),
        "bool_size.pt": rebuild(ints(b"\x88", integer(768)), ints(integer(768), integer(1))),
        "float_size.pt": rebuild(ints(b"G" + np.float64(768.0).byteswap().tobytes()), ints(integer(1))),
        "tensor_as_size.pt": rebuild(ints(rebuild(one, ints(integer(1)))), ints(integer(1))),
        "huge_storage.pt": rebuild(one, ints(integer(1)), numel=big(2**70)),
        "bool_storage_count.pt": rebuild(one, ints(integer(1)), numel=b"\x88"),
        "size_list_not_tuple.pt": rebuild(b"]" + integer(768) + b"a", ints(integer(1))),
        "too_many_dims.pt": rebuild(ints(*[integer(1)] * 9, integer(768)), ints(*[integer(1)] * 10)),
        "grad_not_bool.pt": rebuild(one, ints(integer(1)), grad=text("yes")),
        "hooks_not_empty.pt": rebuild(one, ints(integer(1)), hooks=b"}" + text("k") + integer(1) + b"s"),
        "device_not_text.pt": call(glob("torch", "device"), ints(integer(1))),
        "size_of_floats.pt": call(glob("torch", "Size"), ints(b"G" + np.float64(1.5).byteswap().tobytes())),
        "parameter_of_text.pt": call(glob("torch._utils", "_rebuild_parameter"), text("x"), b"\x89",
                                     call(glob("collections", "OrderedDict"))),
        "ordered_dict_of_junk.pt": call(glob("collections", "OrderedDict"), ints(b"]" + integer(1) + b"a")),
        "reduce_on_a_result.pt": call(call(glob("torch", "device"), text("cpu")), text("x")),
        "newobj_of_size.pt": glob("torch", "Size") + b")\x81",
        "reduce_on_a_class.pt": call(glob("torch.nn.modules.container", "ParameterDict"),
                                     b"]" + MARK + text("*") + rebuild(one, ints(integer(1))) + TUPLE + b"a"),
        "ordered_dict_state.pt": call(glob("collections", "OrderedDict")) + b"}" + text("__class__") + integer(1)
        + b"s" + BUILD,
    }


def _refused(outcomes: dict, names: list[str]) -> None:
    for name in names:
        scan, load = outcomes[name]
        for outcome in (scan, load):
            assert outcome.status in ("corrupt", "unsafe"), (name, outcome)
            assert outcome.type in ("CorruptFileError", "UnsafeFileError"), (name, outcome)
            assert "unexpected" not in outcome.reason, (name, outcome)
            # reasons never quote the file's or memory's bytes
            assert set(outcome.reason) <= set(string.printable) and "\\x" not in outcome.reason, (name, outcome)


def test_numpy_objects_are_rebuilt_from_names_and_checked_bytes(tmp_path: Path) -> None:
    files = numpy_attacks()
    outcomes = scan_and_load(write_all(tmp_path, files))
    _refused(outcomes, list(files))
    assert "plain number type" in outcomes["void_field_far.pt"][1].reason
    assert "fields" in outcomes["f8_given_fields.pt"][1].reason


def test_tensor_geometry_and_callable_arguments_are_plain_checked_ints(tmp_path: Path) -> None:
    files = {name: pt(body) for name, body in tensor_attacks().items()}
    outcomes = scan_and_load(write_all(tmp_path, files))
    _refused(outcomes, list(files))
    assert "whole number" in outcomes["stride_2_64.pt"][1].reason
    assert "whole number" in outcomes["bool_size.pt"][1].reason


def _saved(obj: object, legacy: bool = False) -> bytes:
    out = io.BytesIO()
    torch.save(obj, out, _use_new_zipfile_serialization=not legacy)
    return out.getvalue()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_real_tensors_rebuild_exactly(legacy: bool) -> None:
    """Views, offsets, transposes, half/bfloat16/double and numpy metadata all come back as torch saved them."""
    base = torch.randn(6, 768, generator=torch.Generator().manual_seed(5))
    cases = {
        "offset_view": base[2:4],
        "transposed": base[:4].t().contiguous().t(),
        "half": base[:3].half(),
        "bfloat16": base[:3].bfloat16(),
        "double": base[:2].double(),
        "one_row_1d": base[0],
    }
    for name, vec in cases.items():
        raw = _saved({"emb_params": vec, "step": np.int64(12), "scale": np.float32(0.5),
                      "array": np.arange(4, dtype=np.int16)}, legacy)
        data = formats.decode(raw, f"{name}.pt")
        expected = vec.float().reshape(-1, 768)
        assert torch.equal(data.vec, expected), name
        assert data.step == 12
        header = formats.shape_of(formats.pickles.load_pickle(raw, f"{name}.pt", lazy=True), name, "pt")
        assert header.shape == data.shape
    parameter = torch.nn.Parameter(base[:2].clone())
    assert torch.equal(formats.decode(_saved({"string_to_param": {"*": parameter}}), "p.pt").vec, base[:2])
