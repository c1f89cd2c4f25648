"""Pickles that try to run code, smuggle globals, poison the allow-list or exhaust memory."""

from __future__ import annotations

import copyreg
import io
import os
import zipfile
from pathlib import Path

import pytest
import torch
from hostile_kit import Folder, decode_only, peak_memory
from payloads import (
    BUILD,
    MARK,
    PROTO2,
    PROTO4,
    TUPLE,
    as_dict,
    call,
    float_bytes,
    glob,
    integer,
    pickle_file,
    raw_bytes,
    stack_glob,
    storage,
    tensor,
    text,
    torch_zip,
)

from sd_embeddings.formats import allowlist
from sd_embeddings.formats import decoding as formats
from sd_embeddings.records import Status


def _touch(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def code_payloads(marker: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (pickle stream, the global the refusal must name). Each would create ``marker`` if run."""
    shell = f"touch '{marker}'"
    popen_args = b"]" + MARK + text("touch") + text(str(marker)) + b"e"
    inner_evil = pickle_file(call(glob("os", "system"), text(shell)))
    return {
        "os_system": (call(glob("os", "system"), text(shell)), "os.system"),
        "posix_system": (call(glob("posix", "system"), text(shell)), "posix.system"),
        "subprocess_popen": (call(glob("subprocess", "Popen"), popen_args), "subprocess.Popen"),
        "builtins_eval": (call(glob("builtins", "eval"), text(_touch(marker))), "builtins.eval"),
        "builtins_exec": (call(glob("builtins", "exec"), text(_touch(marker))), "builtins.exec"),
        "py2_builtin_eval": (call(glob("__builtin__", "eval"), text(_touch(marker))), "builtins.eval"),
        "getattr_chain": (call(glob("builtins", "getattr"), glob("os", "path"), text("join")), "builtins.getattr"),
        "import": (call(glob("builtins", "__import__"), text("os")), "builtins.__import__"),
        "stack_global_exec": (call(stack_glob("builtins", "exec"), text(_touch(marker))), "builtins.exec"),
        # the module and name strings are memoised first (keys in order, as picklers number them), then
        # fetched back for STACK_GLOBAL; keys out of order are refused before anything (test_memo_work.py)
        "memo_obfuscated": (text("builtins") + b"q\x00" + text("exec") + b"q\x01" + b"0" + b"0"
                            + b"h\x00h\x01\x93" + MARK + text(_touch(marker)) + TUPLE + b"R", "builtins.exec"),
        "load_from_bytes": (call(glob("torch.storage", "_load_from_bytes"), raw_bytes(inner_evil)),
                            "torch.storage._load_from_bytes"),
        "rebuild_from_numpy": (call(glob("torch._utils", "_rebuild_device_tensor_from_numpy"), text("x")),
                               "torch._utils._rebuild_device_tensor_from_numpy"),
        "torch_load": (call(glob("torch", "load"), text(str(marker))), "torch.load"),
        "numpy_load": (call(glob("numpy", "load"), text(str(marker))), "numpy.load"),
        "pickle_loads": (call(glob("pickle", "loads"), raw_bytes(inner_evil)), "pickle.loads"),
        "functools_partial": (call(glob("functools", "partial"), glob("os", "system")), "functools.partial"),
        "reconstructor_of_evil": (call(glob("copyreg", "_reconstructor"), glob("os", "system"), glob("builtins",
                                  "object")), "os.system"),
        "rebuild_from_type_evil": (call(glob("torch._tensor", "_rebuild_from_type_v2"), glob("builtins", "exec"),
                                        glob("builtins", "object"), MARK + text(_touch(marker)) + TUPLE),
                                   "builtins.exec"),
        "tensor_then_eval": (as_dict("emb_params", tensor((1, 768), (768, 1))) + call(glob("builtins", "eval"),
                             text(_touch(marker))), "builtins.eval"),
    }


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_code_execution_payloads_are_refused(folder: Folder, layout: str) -> None:
    payloads = code_payloads(folder.marker)
    for name, (body, _) in payloads.items():
        proto = PROTO4 if b"\x93" in body else PROTO2
        stream = pickle_file(body, proto)
        folder.add(f"{name}.pt", torch_zip(stream, {"archive/data/0": float_bytes()}) if layout == "zip" else stream)
    library = folder.scan()
    for name, (_, named) in payloads.items():
        entry = folder.entry(library, f"{name}.pt")
        assert entry.status is Status.UNSAFE, (name, entry.reason)
        assert f"'{named}'" in entry.reason and "nothing was run" in entry.reason, (name, entry.reason)


class _Evil:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return os.system, (self.command,)


class Parameter:
    """Looks like ``torch.nn.parameter.Parameter`` by name; its ``__reduce__`` asks for ``eval``."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple:
        return eval, (self.code,)


Parameter.__module__ = "torch.nn.parameter"


def test_reduce_payloads_written_by_torch_save_are_refused(folder: Folder) -> None:
    torch.save({"emb_params": _Evil(f"touch '{folder.marker}'")}, folder.path / "reduce_system.pt")
    torch.save({"string_to_param": {"*": Parameter(_touch(folder.marker))}}, folder.path / "lookalike.pt")
    torch.save({"emb_params": torch.ones(2, 768), "x": _Evil(f"touch '{folder.marker}'")},
               folder.path / "hidden_beside_tensor.pt", _use_new_zipfile_serialization=False)
    library = folder.scan()
    for name in ("reduce_system.pt", "lookalike.pt", "hidden_beside_tensor.pt"):
        entry = folder.entry(library, name)
        assert entry.status is Status.UNSAFE and "nothing was run" in entry.reason, (name, entry.reason)
    assert "builtins.eval" in folder.entry(library, "lookalike.pt").reason


def test_copyreg_extension_codes_are_checked_like_globals(folder: Folder) -> None:
    code = 0xF1
    registered = code in copyreg._inverted_registry  # type: ignore[attr-defined]
    assert not registered
    copyreg.add_extension("os", "system", code)
    try:
        body = b"\x82" + bytes([code]) + MARK + text(f"touch '{folder.marker}'") + TUPLE + b"R"
        folder.add("ext_registered.pt", torch_zip(pickle_file(body)))
        library = folder.scan()
    finally:
        copyreg.remove_extension("os", "system", code)
    entry = folder.entry(library, "ext_registered.pt")
    assert entry.status is Status.UNSAFE and "'os.system'" in entry.reason
    folder.add("ext_unregistered.pt", torch_zip(pickle_file(b"\x82" + bytes([code]) + MARK + TUPLE + b"R")))
    library = folder.scan()
    entry = folder.entry(library, "ext_unregistered.pt")
    assert entry.status is Status.CORRUPT and "pickle data is broken" in entry.reason


def test_persistent_ids_cannot_smuggle_classes(folder: Folder) -> None:
    module_pid = MARK + text("module") + glob("os", "system") + text("x") + text("y") + TUPLE + b"Q"
    folder.add("module_pid.pt", pickle_file(module_pid))
    folder.add("odd_pid.pt", torch_zip(pickle_file(text("nonsense") + b"Q")))
    library = folder.scan()
    assert folder.entry(library, "module_pid.pt").status is Status.UNSAFE
    odd = folder.entry(library, "odd_pid.pt")
    assert odd.status is Status.CORRUPT and "persistent reference" in odd.reason


def test_numpy_object_arrays_are_refused(folder: Folder) -> None:
    object_dtype = call(glob("numpy", "dtype"), text("O8"), b"\x89", b"\x88")
    array = call(glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"), MARK + integer(0) + TUPLE,
                 text("b"))
    body = array + MARK + integer(1) + MARK + integer(1) + TUPLE + object_dtype + b"\x89" + b"]" + TUPLE + BUILD
    folder.add("object_array.pt", torch_zip(pickle_file(as_dict("emb_params", body))))
    library = folder.scan()
    entry = folder.entry(library, "object_array.pt")
    assert entry.status is Status.CORRUPT and "object" in entry.reason and "refused" in entry.reason


def _laughs(depth: int, fanout: int = 10, container: bytes = b"l") -> bytes:
    """A "billion laughs" pickle: each level holds ``fanout`` references to the level below (memo GETs)."""
    body = MARK + TUPLE + b"q\x00"
    for level in range(1, depth + 1):
        get = b"h" + bytes([level - 1])
        body += MARK + get * fanout + container + b"q" + bytes([level])
    return body


@pytest.mark.timeout(60)
def test_pickle_bombs_stay_small_and_fast(folder: Folder) -> None:
    deep = b"(" * 100_000 + b"t" * 100_000
    folder.add("deep_nesting.pt", torch_zip(pickle_file(deep)))
    folder.add("nested_lists.pt", torch_zip(pickle_file(b"]" * 50_000 + b"a" * 49_999)))
    folder.add("laughs_list.pt", torch_zip(pickle_file(as_dict("emb_params", _laughs(30)))))
    folder.add("laughs_name.pt", torch_zip(pickle_file(
        as_dict("name", _laughs(30)) + text("emb_params") + tensor((1, 768), (768, 1)) + b"s"),
        {"archive/data/0": float_bytes()}))
    folder.add("laughs_tuple_key.pt", torch_zip(pickle_file(b"}" + _laughs(30, container=b"t") + text("v") + b"s")))
    folder.add("laughs_frozenset.pt", torch_zip(pickle_file(call(glob("builtins", "frozenset"),
                                                                 b"]" + _laughs(30, container=b"t") + b"a"))))
    with peak_memory() as memory:
        library = folder.scan()
    assert memory["growth_mib"] < 200, memory
    for name in ("deep_nesting.pt", "nested_lists.pt", "laughs_list.pt", "laughs_tuple_key.pt",
                 "laughs_frozenset.pt"):
        entry = folder.entry(library, name)
        assert entry.status in (Status.CORRUPT, Status.NOT_AN_EMBEDDING), (name, entry.reason)
        assert "unexpected error" not in entry.reason, (name, entry.reason)
    named = folder.entry(library, "laughs_name.pt")
    assert named.status is Status.LOADED or "unexpected" not in named.reason, named.reason


def test_tensor_geometry_cannot_leak_errors_or_memory(folder: Folder) -> None:
    data = {"archive/data/0": float_bytes()}
    cases = {
        "negative_stride.pt": tensor((2, 384), (-384, 1)),
        "overflowing_size.pt": tensor((2**31, 2**31, 4), (0, 0, 0)),
        "past_storage.pt": tensor((2, 768), (768, 1)),
        "negative_offset.pt": tensor((1, 768), (768, 1), offset=-5),
        "zero_stride_rows.pt": tensor((1000, 768), (0, 1)),
    }
    for name, body in cases.items():
        folder.add(name, torch_zip(pickle_file(as_dict("emb_params", body)), data))
    # many distinct views of one storage, each cloned on its own: 400 kB of file must not become GBs
    wide = float_bytes(100_000)
    views = b"}" + b"".join(text(f"k{i}") + tensor((1, 100_000), (100_000, 1), numel=100_000) + b"s"
                            for i in range(200))
    folder.add("many_views.pt", torch_zip(pickle_file(views), {"archive/data/0": wide}))
    with peak_memory() as memory:
        library = folder.scan()
    assert memory["growth_mib"] < 300, memory
    for name in [*cases, "many_views.pt"]:
        entry = folder.entry(library, name)
        assert entry.status in (Status.CORRUPT, Status.NOT_AN_EMBEDDING), (name, entry.reason)
        assert "unexpected error" not in entry.reason, (name, entry.reason)


def test_one_file_cannot_change_how_later_files_decode(folder: Folder) -> None:
    """BUILD on shared allow-list objects (storage types, functions, classes) must not outlive the file."""
    poisons = {
        "storage_type.pt": glob("torch", "FloatStorage") + b"}" + text("dtype") + glob("torch", "uint8") + b"s"
        + BUILD,
        "function_defaults.pt": glob("_codecs", "encode") + b"N}" + text("__defaults__") + MARK + text("utf-8")
        + TUPLE + b"s\x86" + BUILD,
        "class_attribute.pt": glob("torch.nn.modules.container", "ParameterDict") + b"N}"
        + text("__setstate__") + glob("builtins", "set") + b"s\x86" + BUILD,
        "dtype_state.pt": call(glob("numpy", "dtype"), text("f4")) + MARK + integer(3) + text(">") + b"NNN"
        + integer(-1) + integer(-1) + integer(0) + TUPLE + BUILD,
    }
    for name, body in poisons.items():
        raw = torch_zip(pickle_file(body))
        assert decode_only(raw, name) is not None
    # every good file still decodes to its exact vectors afterwards (ParameterDict and numpy too)
    vec = torch.randn(2, 768)
    buffer = io.BytesIO()
    torch.save({"string_to_param": torch.nn.ParameterDict({"*": torch.nn.Parameter(vec.clone())}),
                "step": __import__("numpy").int64(7)}, buffer)
    data = formats.decode(buffer.getvalue(), "param_dict.pt")
    assert torch.equal(data.vec, vec) and data.step == 7
    folder.scan()
    assert allowlist.ALLOWED[("torch", "FloatStorage")].scalar.name == "float32"


def test_zip_members_are_bounded(folder: Folder) -> None:
    good_pickle = pickle_file(as_dict("emb_params", tensor((1, 768), (768, 1))))
    folder.add("missing_data.pt", torch_zip(good_pickle))
    folder.add("two_pickles.pt", torch_zip(good_pickle, {"other/data.pkl": good_pickle}))
    folder.add("traversal.pt", torch_zip(good_pickle, {"../../../../tmp/evil/data/0": float_bytes(),
                                                       "/etc/passwd": b"x"}, prefix="../../x"))
    folder.add("short_data.pt", torch_zip(good_pickle, {"archive/data/0": float_bytes(10)}))
    folder.add("zip_bomb.pt", torch_zip(good_pickle, {"archive/data/0": b"\0" * (200 * 2**20)},
                                        compression=zipfile.ZIP_DEFLATED))
    folder.add("lying_size.pt", _lying_zip_bomb(good_pickle, 200 * 2**20))
    with peak_memory() as memory:
        library = folder.scan()
    assert memory["growth_mib"] < 120, memory
    expected = {
        "missing_data.pt": "tensor data '0' is missing",
        "two_pickles.pt": "2 PyTorch saves",
        "traversal.pt": "no data.pkl",
        "short_data.pt": "truncated",
        "zip_bomb.pt": "zip bomb",
        "lying_size.pt": "zip",
    }
    for name, reason in expected.items():
        entry = folder.entry(library, name)
        assert entry.status in (Status.CORRUPT, Status.NOT_AN_EMBEDDING), (name, entry.reason)
        assert reason in entry.reason, (name, entry.reason)
    assert not (Path("/tmp/evil")).exists()


def _lying_zip_bomb(pickle_bytes: bytes, size: int) -> bytes:
    """A deflated member of ``size`` zero bytes whose headers claim it holds 3,072 bytes."""
    raw = bytearray(torch_zip(pickle_bytes, {"archive/data/0": b"\0" * size}, compression=zipfile.ZIP_DEFLATED))
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo("archive/data/0")
    raw[info.header_offset + 22: info.header_offset + 26] = (3072).to_bytes(4, "little")
    central = raw.rfind(b"PK\x01\x02" + bytes(raw[raw.rfind(b"PK\x01\x02") + 4:][:0]))
    while central != -1:
        name_length = int.from_bytes(raw[central + 28: central + 30], "little")
        if raw[central + 46: central + 46 + name_length] == b"archive/data/0":
            raw[central + 24: central + 28] = (3072).to_bytes(4, "little")
        central = raw.rfind(b"PK\x01\x02", 0, central)
    return bytes(raw)


def test_unsafe_reason_names_the_file_and_the_global(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle_file(call(glob("os", "system"), text("true"))))
    error = decode_only(path.read_bytes(), str(path))
    assert error is not None and error.status == "unsafe"
    assert str(path) in str(error) and "'os.system'" in error.reason
    assert storage  # the helper is used by tensor(); keep the import honest for readers
