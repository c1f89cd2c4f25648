"""Every pickle opcode costs O(1) work or pays for what it does (issue 10, attack round 3 finding 2).

The class: an attacker-keyed hash table or an opcode whose work grows with a shared (memo) value. The memo is a
list (keys in the order picklers write them); a call or BUILD charges the length of each container or text it
is given. Work is measured by counting, never by time: a profile hook adds up the sizes the allowed functions
and BUILD were handed (what they copy, hash or encode), and that total must stay within the decode's budget.
"""

from __future__ import annotations

import io
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from factories import vectors
from hostile_kit import TALLY
from payloads import MARK, REDUCE, glob, pickle_file, text

from sd_embeddings.errors import CorruptFileError, EmbeddingError
from sd_embeddings.formats import budget as budgets
from sd_embeddings.formats import decoding as formats
from sd_embeddings.formats.unpickler import SafeUnpickler

HASH_MODULUS = 2**61 - 1
"""Every multiple of it hashes to 0: the keys a dictionary memo would have compared one by one."""
ARGUMENT = {"_set": "items", "_frozenset": "items", "_ordered_dict": "items", "_size": "values",
            "_codecs_encode": "text"}
"""Allowed functions whose work is proportional to the length of this argument (allowlist.py)."""


def put(key: int) -> bytes:
    return b"p" + str(key).encode() + b"\n"


def run(raw: bytes) -> tuple[str, budgets.Budget]:
    """Unpickle one object from ``raw`` with a fresh budget: (outcome, the budget after)."""
    budget = budgets.Budget("x.pt")
    TALLY["inputs"] += 1
    try:
        SafeUnpickler(io.BytesIO(raw), "x.pt", budget).load()
        return "loaded", budget
    except EmbeddingError as e:
        return e.reason, budget


def opcodes(budget: budgets.Budget) -> int:
    return budgets.MAX_NODES - budget.nodes


@contextmanager
def work_meter() -> Iterator[list[int]]:
    """Sum of the sizes handed to the allowed functions above and to BUILD (the state), per call: the work they do
    copying, hashing or encoding it."""
    total = [0]

    def profile(frame, event, arg) -> None:
        if event != "call":
            return
        name = frame.f_code.co_name
        if name in ARGUMENT and frame.f_code.co_filename.endswith("allowlist.py"):
            total[0] += len(frame.f_locals.get(ARGUMENT[name]) or ())
        elif name == "load_build" and frame.f_code.co_filename.endswith("unpickler.py"):
            state = frame.f_locals["self"].stack[-1]
            total[0] += len(state) if hasattr(state, "__len__") else 1

    sys.setprofile(profile)
    try:
        yield total
    finally:
        sys.setprofile(None)


@pytest.mark.parametrize("keys", ["hash-equal", "sparse", "huge-text", "negative"])
def test_memo_keys_out_of_order_are_refused_at_once(keys: str) -> None:
    """The attack's file: protocol-0 PUTs whose keys all hash to 0 (a dictionary memo compares each new key with
    every earlier one: 40,000 keys took 27 s). Keys must come in order, so the first bad one stops the file."""
    body = {"hash-equal": b"N" + b"".join(put(k * HASH_MODULUS) for k in range(1, 3001)),
            "sparse": b"N" + b"q\x00" + b"q\x05" + b"r" + struct.pack("<I", 70_000),
            "huge-text": b"N" + b"p" + b"9" * 5000 + b"\n",
            "negative": b"N" + b"p-1\n"}[keys]
    outcome, budget = run(b"\x80\x02" + body + b".")
    assert "out of order" in outcome or "not a small whole number" in outcome
    assert opcodes(budget) <= 4  # PROTO, NONE, (one store in order) and the refused store


def test_memo_hidden_global_with_keys_out_of_order_runs_nothing(marker: Path) -> None:
    """A global name fetched back from a memo stored at keys 1 and 2 (no 0): refused before the lookup."""
    raw = pickle_file(text("builtins") + b"q\x01" + text("exec") + b"q\x02" + b"00" + b"h\x01h\x02\x93"
                      + MARK + text(f"open({str(marker)!r}, 'w')") + b"tR")
    outcome, _ = run(raw)
    assert "out of order" in outcome and not marker.exists()


def test_memos_of_real_saves_still_load(tmp_path: Path) -> None:
    """torch.save numbers its memo 0, 1, 2 ... (BINPUT, then LONG_BINPUT past 255; MEMOIZE in protocol 4), and
    the legacy format writes several pickles, each numbering from 0: all of these load."""
    vec = vectors(3)
    data = {"string_to_param": {"*": vec}, "name": "x", "step": 7,
            "many": {f"key{i}": [i, f"v{i}"] for i in range(400)}}  # > 256 memoised objects
    for protocol in (2, 4):
        for zipped in (True, False):
            path = tmp_path / f"p{protocol}{zipped}.pt"
            torch.save(data, path, pickle_protocol=protocol, _use_new_zipfile_serialization=zipped)
            assert torch.equal(formats.decode_file(path).vec, vec)


def shared(body: bytes, memo_key: int) -> bytes:
    """``body`` (which leaves one value) stored at ``memo_key``."""
    return body + b"q" + bytes([memo_key])


def int_list(count: int) -> bytes:
    return b"]" + MARK + b"K\x01" * count + b"e"


def repeat(call: bytes, times: int) -> bytes:
    return (call + b"0") * times


CALLS = {
    # set(shared_list) again and again: each call hashes the whole list
    "set": shared(glob("builtins", "set"), 0) + shared(int_list(20_000), 1) + b"0"
           + repeat(b"h\x00h\x01\x85" + REDUCE, 200),
    # OrderedDict(shared_pairs)
    "ordered_dict": shared(glob("collections", "OrderedDict"), 0)
                    + shared(b"]" + MARK + b"".join(b"K\x01N\x86" for _ in range(10_000)) + b"e", 1) + b"0"
                    + repeat(b"h\x00h\x01\x85" + REDUCE, 400),
    # _codecs.encode(shared 1 MB text, 'latin1'): each call copies the megabyte
    "codecs_encode": shared(glob("_codecs", "encode"), 0) + shared(text("a" * 1_000_000), 1)
                     + shared(text("latin1"), 2) + b"0" + repeat(b"h\x00h\x01h\x02\x86" + REDUCE, 1000),
    # BUILD a ParameterDict from one shared 20,000-key dict
    "build": shared(glob("torch.nn.modules.container", "ParameterDict") + b")\x81", 0)
             + shared(b"}" + MARK + b"".join(text(f"k{i}") + b"N" for i in range(20_000)) + b"u", 1) + b"0"
             + repeat(b"h\x00h\x01b", 200),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_work_on_shared_values_is_charged_to_the_budget(name: str) -> None:
    """A few opcodes that make a call or BUILD work on a large shared value: the budget counts that work, so
    the total done before the file is refused stays within the budget (plus one value), not 4 to 1,000 times it.
    """
    with work_meter() as work:
        outcome, budget = run(pickle_file(CALLS[name]))
    assert "too large" in outcome or "expand past" in outcome, outcome
    assert work[0] <= budgets.MAX_NODES + budgets.MAX_BYTES + 1_000_000
    if name != "codecs_encode":  # containers: each item handed over was counted as a node
        assert work[0] <= budgets.MAX_NODES + 20_000


def test_refusals_are_corrupt_files() -> None:
    with pytest.raises(CorruptFileError, match="out of order"):
        formats.decode(b"\x80\x02N" + put(3) + b".", "x.pt")
