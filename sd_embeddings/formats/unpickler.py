"""The allow-list: what a pickle may build, and the checked pickle machine that builds it.

A pickle may only name the globals in ``ALLOWED``; each maps to a small function or stand-in of ours that builds
plain data (tensors become ``TensorRef`` descriptions; ``pickles.py`` fills them from raw storage bytes). Anything
else is refused with the name it asked for. Opcodes that act on existing objects are checked too (see
``SafeUnpickler``).
"""

from __future__ import annotations

import collections
import io
import math
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import CorruptFileError, NotAnEmbeddingError, UnsafeFileError

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}
_TORCH_DTYPES = {str(d).split(".")[-1]: d for d in set(_STORAGE_DTYPES.values())}


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


@dataclass(frozen=True)
class StorageRef:
    key: str
    dtype: torch.dtype
    numel: int


@dataclass
class TensorRef:
    """A tensor described by the pickle, built only once its storage bytes are known to be sufficient.

    Scanning stops here: ``shape`` and ``dtype`` are known without reading any tensor data.
    """

    storage: StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.size

    @property
    def dtype(self) -> torch.dtype:
        return self.storage.dtype

    def dim(self) -> int:
        return len(self.size)

    def is_floating_point(self) -> bool:
        return self.storage.dtype.is_floating_point


class SafeParameterDict(dict):
    """Stands in for ``torch.nn.ParameterDict``: keeps its pickled state as data, runs nothing."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise TypeError("tensor without a storage")
    ref = TensorRef(storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))
    if len(ref.size) != len(ref.stride) or len(ref.size) > 8:
        raise ValueError("tensor size and stride do not match")
    if ref.offset < 0 or any(s < 0 for s in ref.size) or any(s < 0 for s in ref.stride):
        raise ValueError("negative tensor size, stride or offset")
    numel = math.prod(ref.size)
    # an expanded (zero-stride) or overlapping view holds more elements than its storage: refused, so a tiny
    # file cannot ask for gigabytes when the view is copied out
    span = ref.offset + sum((s - 1) * st for s, st in zip(ref.size, ref.stride)) + 1 if numel else 0
    if numel > storage.numel or span > storage.numel:
        raise ValueError(f"tensor {list(ref.size)} reaches past its storage of {storage.numel:,} elements")
    return ref


def _rebuild_tensor_v3(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any,
                       dtype: Any, *_: Any) -> TensorRef:
    if not isinstance(storage, StorageRef) or not isinstance(dtype, torch.dtype):
        raise TypeError("tensor without a storage")
    return _rebuild_tensor(StorageRef(storage.key, dtype, storage.numel), offset, size, stride)


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    return data


def _rebuild_from_type(func: Any, new_type: Any, args: Any, state: Any = None) -> Any:
    if func not in (_rebuild_tensor, _rebuild_tensor_v3, _rebuild_parameter):
        raise TypeError("rebuild through a function that is not a tensor rebuild")
    return func(*args)


def _safe_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(args[0], copy=True)  # a copy: BUILD then sets state on it, never on numpy's singletons
    if dtype.hasobject:
        raise TypeError("numpy object arrays are refused")
    return dtype


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise TypeError("numpy scalar of an unsupported type")
    return np.frombuffer(data, dtype=dtype, count=1)[0].item()


class _NdarrayType:
    """What the pickle gets for ``numpy.ndarray``: a marker for ``_reconstruct``, not a callable constructor."""


_NDARRAY = _NdarrayType()


def _numpy_reconstruct(cls: Any, shape: Any, dtype: Any) -> np.ndarray:
    if cls is not _NDARRAY or not isinstance(shape, tuple) or math.prod(shape) != 0:
        raise TypeError("numpy reconstruct of a non-array")  # numpy always pickles (ndarray, (0,), 'b') + state
    return np.ndarray.__new__(np.ndarray, (0,), _safe_dtype(dtype))


def _set(items: Any = ()) -> set:
    return set(_plain_items(items))


def _frozenset(items: Any = ()) -> frozenset:
    return frozenset(_plain_items(items))


def _ordered_dict(*args: Any) -> collections.OrderedDict:
    if not args:
        return collections.OrderedDict()
    pairs = [tuple(pair) for pair in _plain_items(args[0], pairs=True)]
    return collections.OrderedDict(pairs)


def _plain_items(items: Any, pairs: bool = False) -> list:
    items = list(items) if isinstance(items, (list, tuple)) else None
    keys = [pair[0] if isinstance(pair, (list, tuple)) and len(pair) == 2 else pair for pair in items or []] \
        if pairs else items
    if items is None or not all(_plain_key(key) for key in keys):
        raise TypeError("set items and dictionary keys must be plain values")
    if pairs and not all(isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in items):
        raise TypeError("a dictionary is built from key-value pairs")
    return items


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise TypeError("only latin1 byte strings are accepted")
    return text.encode("latin1")


def _reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    if cls is not SafeParameterDict or base is not object:
        raise TypeError("object reconstruction is refused")
    return SafeParameterDict()


def _allowed() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): _ordered_dict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
        ("torch.nn.parameter", "Parameter"): "Parameter",
        ("torch.nn.modules.container", "ParameterDict"): SafeParameterDict,
        ("torch", "Size"): tuple,
        ("torch", "device"): str,
        ("builtins", "set"): _set,
        ("builtins", "frozenset"): _frozenset,
        ("builtins", "object"): object,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("_codecs", "encode"): _codecs_encode,
        ("torch.storage", "UntypedStorage"): _StorageType(torch.uint8),
    }
    for name, dtype in _STORAGE_DTYPES.items():
        table[("torch", name)] = _StorageType(dtype)
    for name, dtype in _TORCH_DTYPES.items():
        table[("torch", name)] = dtype
    for package in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(package, "scalar")] = _numpy_scalar
        table[(package, "_reconstruct")] = _numpy_reconstruct
    table[("numpy", "dtype")] = _safe_dtype
    table[("numpy", "ndarray")] = _NDARRAY
    return table


ALLOWED = _allowed()


def _plain_key(key: Any) -> bool:
    """Dict keys and set items a torch save can hold: scalars, or a flat tuple of them (cheap to hash)."""
    if isinstance(key, tuple):
        return len(key) <= 16 and all(not isinstance(k, tuple) and _plain_key(k) for k in key)
    if isinstance(key, int):
        return key.bit_length() <= 64
    return key is None or isinstance(key, (str, bytes, float))


class SafeUnpickler(pickle._Unpickler):
    """Pickle's pure-Python machine, with every opcode that acts on existing objects checked.

    ``find_class`` alone is not enough: BUILD sets state on whatever is on the stack (the shared allow-list
    entries, our functions, numpy's dtype singletons), so one file could change how every later file decodes;
    hashing nested keys built from memo references takes exponential time; and one-byte opcodes that create
    containers amplify memory. Only what a torch save needs is let through.
    """

    dispatch = dict(pickle._Unpickler.dispatch)
    MAX_CONTAINERS = 1_000_000

    def __init__(self, stream: io.BytesIO, path: str) -> None:
        super().__init__(stream)
        self.path = path
        self.containers = 0

    def find_class(self, module: str, name: str) -> Any:
        module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)  # Python 2 names
        target = ALLOWED.get((module, name))
        if target is None:
            raise UnsafeFileError(self.path, f"refused to load '{module}.{name}' from the pickle "
                                             "(only tensors and plain data are allowed; nothing was run)")
        return target

    def _check_keys(self, keys: Any) -> None:
        for key in keys:
            if not _plain_key(key):
                raise CorruptFileError(self.path, f"pickle uses a {type(key).__name__} as a dictionary key or "
                                                  "set item (refused)")

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is SafeParameterDict:
            inst.__setstate__(state)
        elif type(inst) is np.ndarray or isinstance(inst, np.dtype):
            inst.__setstate__(state)
            if (inst.dtype if isinstance(inst, np.ndarray) else inst).hasobject:
                raise CorruptFileError(self.path, "numpy object arrays are refused")
        else:
            raise UnsafeFileError(self.path, f"refused to set the state of a {type(inst).__name__} from the "
                                             "pickle (nothing was run)")

    def load_setitem(self) -> None:
        self._check_keys(self.stack[-2:-1])
        super().load_setitem()

    def load_setitems(self) -> None:
        self._check_keys(self.stack[0::2])  # after MARK, ``stack`` holds exactly the items since the mark
        super().load_setitems()

    def load_dict(self) -> None:
        self._check_keys(self.stack[0::2])
        super().load_dict()

    def load_additems(self) -> None:
        self._check_keys(self.stack)
        super().load_additems()

    def load_frozenset(self) -> None:
        self._check_keys(self.stack)
        super().load_frozenset()

    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.DICT[0]] = load_dict
    dispatch[pickle.ADDITEMS[0]] = load_additems
    dispatch[pickle.FROZENSET[0]] = load_frozenset

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 4 and pid[0] == "module":
            if pid[1] is not SafeParameterDict:
                raise UnsafeFileError(self.path, "refused a pickled module class")
            return pid[1]  # legacy files name the module class once; only ParameterDict gets here
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CorruptFileError(self.path, "unknown persistent reference in the pickle")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0 \
                or not isinstance(key, str):
            raise CorruptFileError(self.path, "malformed tensor storage reference")
        if len(pid) > 5 and pid[5] is not None:
            raise NotAnEmbeddingError(self.path, "storage views from very old PyTorch files are not supported")
        return StorageRef(key, storage_type.dtype, numel)


def _counting(load: Any) -> Any:
    def counted(self: SafeUnpickler) -> None:
        self.containers += 1
        if self.containers > self.MAX_CONTAINERS:
            raise CorruptFileError(self.path, f"pickle builds more than {self.MAX_CONTAINERS:,} containers")
        load(self)

    return counted


for _opcode in (pickle.MARK, pickle.EMPTY_LIST, pickle.EMPTY_DICT, pickle.EMPTY_SET):
    SafeUnpickler.dispatch[_opcode[0]] = _counting(SafeUnpickler.dispatch[_opcode[0]])



def unpickle(data: bytes, path: str) -> Any:
    try:
        return SafeUnpickler(io.BytesIO(data), path).load()
    except (UnsafeFileError, CorruptFileError, NotAnEmbeddingError):
        raise
    except RecursionError as e:
        raise CorruptFileError(path, "pickle nests too deeply") from e
    except Exception as e:  # the pickle machine raises many types for garbage input
        raise CorruptFileError(path, f"broken pickle data ({type(e).__name__}: {str(e)[:80]})") from e
