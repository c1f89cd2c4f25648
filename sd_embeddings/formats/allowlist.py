"""The allow-list: every global a pickle may name, mapped to a strict function or inert marker of ours.

Anything else is refused by ``unpickler.SafeUnpickler`` with the name it asked for. Each function here checks the
exact type of its arguments (a device is a short ``str``, a size is a tuple of plain ints, dictionary keys are
plain values) so no untrusted object is ever converted, hashed or compared in a way that can run for long.
"""

from __future__ import annotations

import collections
from typing import Any

from .pickle_values import (
    NDARRAY,
    OBJECT,
    PARAMETER,
    SCALAR_TYPES,
    STORAGE_NAMES,
    SafeParameterDict,
    StorageType,
    fail,
    int_tuple,
    numpy_dtype,
    numpy_reconstruct,
    numpy_scalar,
    plain_int,
    rebuild_from_type,
    rebuild_parameter,
    rebuild_tensor,
    rebuild_tensor_v2,
    rebuild_tensor_v3,
)

_INT_HASH_MODULUS = 2**61 - 1


def plain_key(key: Any) -> bool:
    """Dict keys and set items a torch save holds: text, bytes, None, bools and ints below 2**61.

    Only keys whose hashes a file cannot make collide: str/bytes hashes are salted per process, and distinct
    ints below 2**61 - 1 hash apart. Tuples, floats and larger ints hash predictably, so a file could fill one
    dict with equal-hash keys and make every insert compare with all before it (quadratic work in the budget)."""
    if type(key) is int:
        return abs(key) < _INT_HASH_MODULUS
    return key is None or type(key) in (str, bytes, bool)


def _items(items: Any, what: str) -> list:
    if type(items) not in (list, tuple):
        raise fail(f"{what} is not built from a list")
    return list(items)


def _keys_plain(keys: list, what: str) -> None:
    if not all(plain_key(key) for key in keys):
        raise fail(f"{what} uses something other than a plain value as a key (refused)")


def _set(items: Any = ()) -> set:
    found = _items(items, "a set")
    _keys_plain(found, "a set")
    return set(found)


def _frozenset(items: Any = ()) -> frozenset:
    return frozenset(_set(items))


def _ordered_dict(items: Any = ()) -> collections.OrderedDict:
    pairs = _items(items, "an ordered dictionary")
    if not all(type(pair) in (list, tuple) and len(pair) == 2 for pair in pairs):
        raise fail("an ordered dictionary is not built from key-value pairs")
    _keys_plain([pair[0] for pair in pairs], "an ordered dictionary")
    return collections.OrderedDict((pair[0], pair[1]) for pair in pairs)


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if type(text) is not str or encoding not in ("latin1", "latin-1") or type(encoding) is not str:
        raise fail("only latin1 byte strings are accepted")
    try:
        return text.encode("latin1")
    except UnicodeEncodeError as e:
        raise fail("a latin1 byte string holds characters outside latin1") from e


def _reconstructor(cls: Any, base: Any, state: Any = None) -> SafeParameterDict:
    if cls is not SafeParameterDict or base is not OBJECT or state is not None:
        raise fail("object reconstruction is refused")
    return SafeParameterDict()


def _size(values: Any = ()) -> tuple[int, ...]:
    return int_tuple(tuple(values) if type(values) is list else values, "a torch.Size")


def _device(name: Any, index: Any = None) -> str:
    """A device is a short name (``cpu``, ``cuda:0``); where the tensor lived does not matter here."""
    if type(name) is not str or len(name) > 32 or not name.isascii():
        raise fail("a device that is not a short name")
    if index is not None:
        plain_int(index, "a device index", 0, 2**16)
    return name


def _allowed() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): _ordered_dict,
        ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type,
        ("torch.nn.parameter", "Parameter"): PARAMETER,
        ("torch.nn.modules.container", "ParameterDict"): SafeParameterDict,
        ("torch", "Size"): _size,
        ("torch", "device"): _device,
        ("builtins", "set"): _set,
        ("builtins", "frozenset"): _frozenset,
        ("builtins", "object"): OBJECT,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("_codecs", "encode"): _codecs_encode,
        ("torch.storage", "UntypedStorage"): StorageType(SCALAR_TYPES["uint8"]),
        ("numpy", "dtype"): numpy_dtype,
        ("numpy", "ndarray"): NDARRAY,
    }
    for storage_name, scalar_name in STORAGE_NAMES.items():
        table[("torch", storage_name)] = StorageType(SCALAR_TYPES[scalar_name])
    for name, scalar in SCALAR_TYPES.items():
        table[("torch", name)] = scalar
    for package in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(package, "scalar")] = numpy_scalar
        table[(package, "_reconstruct")] = numpy_reconstruct
    return table


ALLOWED = _allowed()
CALLABLE = frozenset(id(value) for value in ALLOWED.values() if callable(value) and value is not SafeParameterDict)
"""What REDUCE may call: our functions only (never a class, a marker or a value taken from the stack)."""
