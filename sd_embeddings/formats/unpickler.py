"""The checked pickle machine: only allow-listed globals, only the opcodes a torch save uses, within a budget.

``find_class`` alone is not enough: REDUCE could call anything on the stack, BUILD sets state on whatever is
there, NEWOBJ constructs any class, and one-byte opcodes (memo GETs, empty containers) build large or shared
structures cheaply. Each of these is checked here, every opcode costs one node of the file's ``Budget``, and no
value from the pickle reaches a numpy or torch constructor (see ``pickle_values``).
"""

from __future__ import annotations

import collections
import io
import pickle
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


def _state_dict_metadata(state: Any) -> bool:
    """``module.state_dict()`` is an OrderedDict carrying ``_metadata`` (per-module versions) as its state."""
    return type(state) is dict and list(state) == ["_metadata"]


class SafeUnpickler(pickle._Unpickler):
    """Pickle's pure-Python machine with every opcode that calls, constructs or mutates checked."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, stream: io.BytesIO, path: str, budget: Budget | None = None) -> None:
        super().__init__(stream)
        self.path = path
        self.budget = budget or Budget(path)

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
