"""The records a pickle may build and the strict functions that build tensors, numpy dtypes and scalars.

``allowlist.py`` maps pickle globals to these. Nothing here hands a pickled value to a numpy or torch
constructor. Every function checks the exact type and range of each argument (plain ``int``, never ``bool``, a
float or an object with ``__index__``) and builds a plain record: tensors stay ``TensorRef`` descriptions until
``pickles.py`` copies validated storage bytes; numpy dtypes are known by name only; scalars are decoded from bytes
of exactly their item size. A wrong argument raises ``CorruptFileError`` with a reason that names what was wrong,
never the value itself.
"""

from __future__ import annotations

import collections
import math
import struct
from dataclasses import dataclass
from typing import Any

from ..errors import CorruptFileError
from .budget import MAX_DIMS

MAX_DIMENSION = 2**40
"""Largest size, stride, offset or element count accepted anywhere (far past any real tensor)."""


@dataclass(frozen=True)
class ScalarType:
    """A plain numeric element type: torch's name, the struct/numpy letter code and the item size."""

    name: str
    code: str
    itemsize: int
    is_float: bool

    def __str__(self) -> str:
        return self.name


SCALAR_TYPES = {t.name: t for t in (
    ScalarType("float32", "f4", 4, True), ScalarType("float16", "f2", 2, True),
    ScalarType("bfloat16", "bf16", 2, True), ScalarType("float64", "f8", 8, True),
    ScalarType("int64", "i8", 8, False), ScalarType("int32", "i4", 4, False), ScalarType("int16", "i2", 2, False),
    ScalarType("int8", "i1", 1, False), ScalarType("uint8", "u1", 1, False), ScalarType("bool", "b1", 1, False),
)}
STORAGE_NAMES = {
    "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16", "DoubleStorage": "float64",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool",
}
_NUMPY_CODES = {t.code: t for t in SCALAR_TYPES.values() if t.code != "bf16"}


class Marker:
    """An allowed global that is not callable (a class used only as an argument, e.g. ``numpy.ndarray``)."""

    def __init__(self, name: str) -> None:
        self.name = name


@dataclass(frozen=True)
class StorageType:
    scalar: ScalarType


@dataclass(frozen=True)
class StorageRef:
    key: str
    scalar: ScalarType
    numel: int


@dataclass
class TensorRef:
    """A tensor described by the pickle; its geometry is already checked against its storage's element count."""

    storage: StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.size

    @property
    def dtype(self) -> ScalarType:
        return self.storage.scalar

    def dim(self) -> int:
        return len(self.size)

    def is_floating_point(self) -> bool:
        return self.storage.scalar.is_float


@dataclass
class NumpyDtype:
    """``numpy.dtype('f4')`` as data: a plain numeric type and a byte order (set by BUILD, validated)."""

    scalar: ScalarType
    byteorder: str = "<"


@dataclass
class ArrayValue:
    """A pickled numpy array, kept as checked bytes: no array is built (an embedding never needs one)."""

    shape: tuple[int, ...] = ()
    dtype: NumpyDtype | None = None
    data: bytes = b""


class SafeParameterDict(dict):
    """Stands in for ``torch.nn.ParameterDict``: keeps its pickled state as data, runs nothing."""


PARAMETER = Marker("Parameter")
NDARRAY = Marker("numpy.ndarray")
OBJECT = Marker("object")


def fail(what: str) -> CorruptFileError:
    return CorruptFileError(None, what)


def plain_int(value: Any, what: str, low: int = 0, high: int = MAX_DIMENSION) -> int:
    if type(value) is not int or not low <= value < high:
        raise fail(f"{what} is not a whole number in range")
    return value


def int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if type(value) is not tuple or len(value) > MAX_DIMS:
        raise fail(f"{what} is not a short tuple of whole numbers")
    return tuple(plain_int(item, what) for item in value)


def _plain_bool(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise fail(f"{what} is not true or false")
    return value


def _empty_or_dict(value: Any, what: str, empty: bool = True) -> None:
    if value is not None and (type(value) not in (dict, collections.OrderedDict) or (empty and value)):
        raise fail(f"{what} is not {'an empty' if empty else 'a'} dictionary")


def rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any) -> TensorRef:
    if type(storage) is not StorageRef:
        raise fail("tensor without a storage")
    ref = TensorRef(storage, plain_int(offset, "tensor offset"), int_tuple(size, "tensor size"),
                    int_tuple(stride, "tensor stride"))
    if len(ref.size) != len(ref.stride):
        raise fail("tensor size and stride do not match")
    numel = math.prod(ref.size)
    # an expanded (zero-stride) or overlapping view holds more elements than its storage: refused, so a tiny
    # file cannot ask for gigabytes when the view is copied out
    span = ref.offset + sum((s - 1) * st for s, st in zip(ref.size, ref.stride)) + 1 if numel else 0
    if numel > storage.numel or span > storage.numel:
        raise fail(f"a tensor reaches past its storage of {storage.numel:,} elements")
    return ref


def rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       hooks: Any = None, metadata: Any = None) -> TensorRef:
    _plain_bool(requires_grad, "requires_grad")
    _empty_or_dict(hooks, "backward hooks")
    _empty_or_dict(metadata, "tensor metadata", empty=False)
    return rebuild_tensor(storage, offset, size, stride)


def rebuild_tensor_v3(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any,
                       dtype: Any, metadata: Any = None) -> TensorRef:
    if type(storage) is not StorageRef or type(dtype) is not ScalarType:
        raise fail("tensor without a storage")
    retyped = StorageRef(storage.key, dtype, storage.numel * storage.scalar.itemsize // dtype.itemsize)
    return rebuild_tensor_v2(retyped, offset, size, stride, requires_grad, hooks, metadata)


def rebuild_parameter(data: Any, requires_grad: Any, hooks: Any, state: Any = None) -> TensorRef:
    if type(data) is not TensorRef:
        raise fail("a parameter that is not a tensor")
    _plain_bool(requires_grad, "requires_grad")
    _empty_or_dict(hooks, "backward hooks")
    _empty_or_dict(state, "parameter state", empty=False)
    return data


def rebuild_from_type(func: Any, new_type: Any, args: Any, state: Any = None) -> Any:
    if func not in (rebuild_tensor, rebuild_tensor_v2, rebuild_tensor_v3, rebuild_parameter) \
            or new_type is not PARAMETER or type(args) is not tuple:
        raise fail("rebuild through a function that is not a tensor rebuild")
    _empty_or_dict(state, "tensor state", empty=False)
    return func(*args)


def numpy_dtype(name: Any, align: Any = False, copy: Any = True) -> NumpyDtype:
    if type(name) is not str or name not in _NUMPY_CODES:
        raise fail("numpy dtype that is not a plain number type (structured, object and text dtypes are refused)")
    _plain_bool(align, "dtype align")
    _plain_bool(copy, "dtype copy")
    return NumpyDtype(_NUMPY_CODES[name])


def build_dtype(dtype: NumpyDtype, state: Any) -> None:
    """numpy's dtype state for a plain number type: (3, byteorder, None, None, None, -1, -1, flags)."""
    if type(state) is not tuple or len(state) != 8 or state[0] not in (3, 4) or state[1] not in ("<", ">", "|", "=") \
            or state[2:5] != (None, None, None) or state[5:7] != (-1, -1):
        raise fail("numpy dtype state describes fields or sizes (refused)")
    plain_int(state[7], "numpy dtype flags", 0, 2**16)
    dtype.byteorder = ">" if state[1] == ">" else "<"


def numpy_scalar(dtype: Any, data: Any = None) -> int | float | bool:
    if type(dtype) is not NumpyDtype or type(data) is not bytes or len(data) != dtype.scalar.itemsize:
        raise fail("numpy scalar of an unsupported type or size")
    return unpack_scalar(dtype.scalar, dtype.byteorder, data)


def unpack_scalar(scalar: ScalarType, byteorder: str, data: bytes) -> int | float | bool:
    if scalar.code == "b1":
        return data != b"\0"
    letter = {"f2": "e", "f4": "f", "f8": "d"}.get(scalar.code)
    if letter:
        return struct.unpack(byteorder + letter, data)[0]
    return int.from_bytes(data, "big" if byteorder == ">" else "little", signed=scalar.code[0] == "i")


def numpy_reconstruct(cls: Any, shape: Any, code: Any) -> ArrayValue:
    if cls is not NDARRAY or type(shape) is not tuple or shape != (0,) or type(code) not in (bytes, str) \
            or code not in (b"b", "b"):
        raise fail("numpy reconstruct of something that is not an array")
    return ArrayValue()


def build_array(array: ArrayValue, state: Any) -> None:
    """numpy's array state: (1, shape, dtype, is_fortran, raw bytes); the bytes must be exactly the array's."""
    if type(state) is not tuple or len(state) != 5 or state[0] != 1 or type(state[0]) is not int \
            or type(state[2]) is not NumpyDtype or type(state[3]) is not bool or type(state[4]) is not bytes:
        raise fail("numpy array state is not a plain numeric array")
    shape = int_tuple(state[1], "numpy array shape")
    if math.prod(shape) * state[2].scalar.itemsize != len(state[4]):
        raise fail("numpy array data is not the size its shape says")
    array.shape, array.dtype, array.data = shape, state[2], state[4]
