"""The checked pickle machine: only allow-listed globals, only the opcodes a torch save uses, within a budget.

``find_class`` alone is not enough: REDUCE could call anything on the stack, BUILD sets state on whatever is
there, NEWOBJ constructs any class, and one-byte opcodes (memo GETs, empty containers) build large or shared
structures cheaply. Each of these is checked here, every opcode costs one node of the file's ``Budget``, and no
value from the pickle reaches a numpy or torch constructor (see ``pickle_values``).

Every opcode's work is O(1), or paid for: the memo is a list indexed by keys given in order (as every pickler
writes them: 0, 1, 2, ...), never a dictionary a file could fill with equal-hash keys; a call (REDUCE) or a BUILD
whose argument is a container or text charges its length (a set built from a shared 100,000-item list costs
100,000 nodes each time, not one), and containers built from the stack were paid for by the opcodes that
pushed their items.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from typing import Any

from ..errors import CorruptFileError, NotAnEmbeddingError, UnsafeFileError
from .allowlist import ALLOWED, CALLABLE, plain_key
from .budget import Budget, classified, shown
from .pickle_values import (
    ArrayValue,
    NumpyDtype,
    SafeParameterDict,
    StorageRef,
    StorageType,
    build_array,
    build_dtype,
    plain_int,
)

_DICTS = (dict, collections.OrderedDict, SafeParameterDict)
_SIZED = (list, tuple, set, frozenset, *_DICTS)
_TEXT = (str, bytes, bytearray)
MAX_ARGUMENTS = 8
"""The most arguments any allowed function takes (``_rebuild_tensor_v3``)."""
_MEMO_KEY_DIGITS = 10
"""A text memo key (protocol 0 ``PUT``/``GET``) has at most this many digits: 2**32 needs 10."""


def _state_dict_metadata(state: Any) -> bool:
    """``module.state_dict()`` is an OrderedDict carrying ``_metadata`` (per-module versions) as its state."""
    return type(state) is dict and len(state) == 1 and "_metadata" in state


class SafeUnpickler(pickle._Unpickler):
    """Pickle's pure-Python machine with every opcode that calls, constructs or mutates checked."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, stream: io.BytesIO, path: str, budget: Budget | None = None) -> None:
        super().__init__(stream)
        self.path = path
        self.budget = budget or Budget(path)
        self.memo: list[Any] = []  # type: ignore[assignment]  # keys are dense: see _put

    # -- the memo: a list, keys in order --------------------------------------------------------------------

    def _put(self, key: int) -> None:
        """Store the top of the stack under ``key``: the next key (as picklers number them) or one already
        used (legacy files hold several pickles, each numbering from 0). Any other key is refused: a dictionary
        memo would let a file choose keys that all hash alike and make every store compare with all before it."""
        if key < len(self.memo):
            self.memo[key] = self.stack[-1]
        elif key == len(self.memo):
            self.memo.append(self.stack[-1])
        else:
            raise CorruptFileError(self.path, "pickle stores references out of order (refused)")

    def _get(self, key: int) -> None:
        if key >= len(self.memo):
            raise CorruptFileError(self.path, "pickle refers to something it never stored")
        self.append(self.memo[key])

    def _text_key(self) -> int:
        line = self.readline()[:-1]
        if not (0 < len(line) <= _MEMO_KEY_DIGITS and line.isdigit()):
            raise CorruptFileError(self.path, "pickle has a reference that is not a small whole number")
        return int(line)

    def load_put(self) -> None:
        self._put(self._text_key())

    def load_binput(self) -> None:
        self._put(self.read(1)[0])

    def load_long_binput(self) -> None:
        self._put(struct.unpack("<I", self.read(4))[0])

    def load_memoize(self) -> None:
        self._put(len(self.memo))

    def load_get(self) -> None:
        self._get(self._text_key())

    def load_binget(self) -> None:
        self._get(self.read(1)[0])

    def load_long_binget(self) -> None:
        self._get(struct.unpack("<I", self.read(4))[0])

    def _charge(self, values: tuple) -> None:
        """Pay for work done in proportion to values that may be shared (memo): items of containers as nodes,
        characters of text as bytes. Only the values themselves are measured (``len``), never walked."""
        for value in values:
            if type(value) in _SIZED:
                self.budget.spend_nodes(len(value))
            elif type(value) in _TEXT:
                self.budget.spend_bytes(len(value))

    def find_class(self, module: str, name: str) -> Any:
        module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)  # Python 2 names
        target = ALLOWED.get((module, name))
        if target is None:
            raise UnsafeFileError(self.path, f"refused to load '{shown(module, 80)}.{shown(name, 80)}' from the pickle "
                                             "(only tensors and plain data are allowed; nothing was run)")
        return target

    def _check_keys(self, keys: Any) -> None:
        if not all(plain_key(key) for key in keys):
            raise CorruptFileError(self.path, "pickle uses something other than a plain value as a dictionary key "
                                              "or set item (refused)")

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if id(func) not in CALLABLE or type(args) is not tuple:
            raise UnsafeFileError(self.path, "refused a call to something that is not an allowed function "
                                             "(nothing was run)")
        if len(args) > MAX_ARGUMENTS:
            raise CorruptFileError(self.path, f"pickle calls {func.__name__} with {len(args):,} arguments")
        self._charge(args)
        try:
            self.stack[-1] = func(*args)
        except TypeError as e:  # our functions raise CorruptFileError themselves: this is a wrong argument count
            raise CorruptFileError(self.path, f"pickle calls {func.__name__} with the wrong number of arguments") from e

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        if cls is not SafeParameterDict or type(args) is not tuple or args:
            raise UnsafeFileError(self.path, "refused to construct an object that is not a ParameterDict "
                                             "(nothing was run)")
        self.append(SafeParameterDict())

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        if type(kwargs) is not dict or kwargs:
            raise UnsafeFileError(self.path, "refused to construct an object with keyword arguments")
        self.load_newobj()

    def load_refused(self) -> None:
        raise UnsafeFileError(self.path, "refused an opcode that instantiates classes (INST/OBJ; nothing was run)")

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        self._charge((state,))
        if type(inst) is SafeParameterDict and type(state) is dict:
            self._check_keys(list(state))
            inst.update(state)
        elif type(inst) is NumpyDtype:
            build_dtype(inst, state)
        elif type(inst) is ArrayValue:
            build_array(inst, state)
        elif type(inst) is collections.OrderedDict and _state_dict_metadata(state):
            pass  # per-module version numbers: nothing an embedding reader needs
        else:
            raise UnsafeFileError(self.path, f"refused to set the state of a {type(inst).__name__} from the "
                                             "pickle (nothing was run)")

    def load_append(self) -> None:
        if type(self.stack[-2]) is not list:  # stack[-1] is the value; the list sits below it
            raise CorruptFileError(self.path, "pickle appends to something that is not a list")
        super().load_append()

    def load_appends(self) -> None:
        items = self.pop_mark()
        if type(self.stack[-1]) is not list:
            raise CorruptFileError(self.path, "pickle appends to something that is not a list")
        self.stack[-1].extend(items)

    def load_setitem(self) -> None:
        self._check_keys(self.stack[-2:-1])
        if type(self.stack[-3]) not in _DICTS:
            raise CorruptFileError(self.path, "pickle sets an item of something that is not a dictionary")
        super().load_setitem()

    def load_setitems(self) -> None:
        self._check_keys(self.stack[0::2])  # after MARK, ``stack`` holds exactly the items since the mark
        if type(self.metastack[-1][-1]) not in _DICTS:
            raise CorruptFileError(self.path, "pickle sets items of something that is not a dictionary")
        super().load_setitems()

    def load_dict(self) -> None:
        self._check_keys(self.stack[0::2])
        super().load_dict()

    def load_additems(self) -> None:
        self._check_keys(self.stack)
        if type(self.metastack[-1][-1]) is not set:
            raise CorruptFileError(self.path, "pickle adds items to something that is not a set")
        super().load_additems()

    def load_frozenset(self) -> None:
        self._check_keys(self.stack)
        super().load_frozenset()

    def load_persid(self) -> None:
        raise CorruptFileError(self.path, "unknown persistent reference in the pickle")

    def persistent_load(self, pid: Any) -> Any:
        if type(pid) is tuple and len(pid) == 4 and pid[0] == "module":
            if pid[1] is not SafeParameterDict:
                raise UnsafeFileError(self.path, "refused a pickled module class")
            return pid[1]  # legacy files name the module class once; only ParameterDict gets here
        if not (type(pid) is tuple and 5 <= len(pid) <= 6 and pid[0] == "storage"):
            raise CorruptFileError(self.path, "unknown persistent reference in the pickle")
        storage_type, key, location, numel = pid[1], pid[2], pid[3], pid[4]
        if type(storage_type) is not StorageType or type(key) is not str or len(key) > 64 \
                or type(location) is not str or len(location) > 32:
            raise CorruptFileError(self.path, "malformed tensor storage reference")
        plain_int(numel, "storage element count")
        if len(pid) > 5 and pid[5] is not None:
            raise NotAnEmbeddingError(self.path, "storage views from very old PyTorch files are not supported")
        return StorageRef(key, storage_type.scalar, numel)


_CHECKED = {
    pickle.REDUCE: SafeUnpickler.load_reduce, pickle.NEWOBJ: SafeUnpickler.load_newobj,
    pickle.NEWOBJ_EX: SafeUnpickler.load_newobj_ex, pickle.INST: SafeUnpickler.load_refused,
    pickle.OBJ: SafeUnpickler.load_refused, pickle.BUILD: SafeUnpickler.load_build,
    pickle.APPEND: SafeUnpickler.load_append, pickle.APPENDS: SafeUnpickler.load_appends,
    pickle.SETITEM: SafeUnpickler.load_setitem, pickle.SETITEMS: SafeUnpickler.load_setitems,
    pickle.DICT: SafeUnpickler.load_dict, pickle.ADDITEMS: SafeUnpickler.load_additems,
    pickle.FROZENSET: SafeUnpickler.load_frozenset, pickle.PERSID: SafeUnpickler.load_persid,
    pickle.PUT: SafeUnpickler.load_put, pickle.BINPUT: SafeUnpickler.load_binput,
    pickle.LONG_BINPUT: SafeUnpickler.load_long_binput, pickle.MEMOIZE: SafeUnpickler.load_memoize,
    pickle.GET: SafeUnpickler.load_get, pickle.BINGET: SafeUnpickler.load_binget,
    pickle.LONG_BINGET: SafeUnpickler.load_long_binget,
}


def _budgeted(handler: Any) -> Any:
    def run(self: SafeUnpickler) -> None:
        self.budget.spend_nodes()
        handler(self)

    return run


SafeUnpickler.dispatch.update({opcode[0]: handler for opcode, handler in _CHECKED.items()})
SafeUnpickler.dispatch = {code: _budgeted(handler) for code, handler in SafeUnpickler.dispatch.items()}


def next_object(unpickler: SafeUnpickler) -> Any:
    """One pickled object from the stream (legacy files hold several in a row); errors get a reason."""
    with classified(unpickler.path, "pickle data"):
        return unpickler.load()


def unpickle(data: bytes, path: str, budget: Budget | None = None) -> Any:
    return next_object(SafeUnpickler(io.BytesIO(data), path, budget))
