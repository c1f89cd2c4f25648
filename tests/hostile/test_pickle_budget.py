"""Class 2: a tiny file cannot buy exponential work, and untrusted values are never str()-ed, hashed or walked
without a budget.

Work is asserted as counts (the decode's ``Budget``: opcodes run plus nodes walked), never as time. Inputs that
once ran for ever run in a child process, so a regression fails the test (hang guard) instead of hanging pytest.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from isolated import scan_and_load, write_all
from payloads import MARK, as_dict, call, float_bytes, glob, integer, pickle_file, tensor, text, torch_zip
from test_pickle_constructors import big

from sd_embeddings.errors import EmbeddingError
from sd_embeddings.formats import budget as budgets
from sd_embeddings.formats import decoding as formats
from sd_embeddings.formats import pickles
from sd_embeddings.formats.decoding import metadata_for

DATA = {"archive/data/0": float_bytes(768)}
GOOD_TENSOR = tensor((1, 768), (768, 1))


def shared_lists(depth: int) -> bytes:
    """A memo-shared list DAG: level n holds level n-1 twice, so a naive walk or str() does 2**depth steps."""
    body = b"]q\x000"
    for level in range(1, depth + 1):
        get = b"h" + bytes([level - 1])
        body += MARK + get + get + b"l" + b"q" + bytes([level]) + b"0"
    return body + b"h" + bytes([depth])


def shared_dicts(depth: int) -> bytes:
    body = b"}q\x000"
    for level in range(1, depth + 1):
        get = b"h" + bytes([level - 1])
        body += b"}" + MARK + text("a") + get + text("b") + get + b"u" + b"q" + bytes([level]) + b"0"
    return body + b"h" + bytes([depth])


def with_tensor(**extra: bytes) -> bytes:
    """``{"string_to_param": {"*": <tensor>}, **extra}`` as a torch zip (the WebUI's layout)."""
    body = b"}" + text("string_to_param") + as_dict("*", GOOD_TENSOR) + b"s"
    for key, value in extra.items():
        body += text(key) + value + b"s"
    return torch_zip(pickle_file(body), DATA)


def spent(raw: bytes, name: str) -> tuple[int, str]:
    """Nodes the decode used (opcodes + walked nodes) and its outcome."""
    budget = budgets.Budget(name)
    try:
        opened = pickles.open_pickle(raw, name, budget)
        formats.interpret(opened.obj, name, "pt", opened.array)
        outcome = "loaded"
    except EmbeddingError as e:
        outcome = e.reason
    return budgets.MAX_NODES - budget.nodes, outcome


def test_device_of_a_shared_list_dag_is_refused_at_once(tmp_path: Path) -> None:
    """The reported hang: ``torch.device`` (once mapped to ``str``) given a 40-level shared list."""
    raw = torch_zip(pickle_file(as_dict("emb_params", call(glob("torch", "device"), shared_lists(40)))), DATA)
    used, outcome = spent(raw, "device.pt")
    assert "device" in outcome and used < 1_000, (used, outcome)
    (scan, load), = scan_and_load(write_all(tmp_path, {"device.pt": raw})).values()
    assert scan.status == load.status == "corrupt"


def test_shared_structures_beside_a_tensor_cost_linear_work(tmp_path: Path) -> None:
    files = {
        "lists_as_name.pt": with_tensor(name=shared_lists(60)),
        "dicts_as_checkpoint.pt": with_tensor(sd_checkpoint=shared_dicts(60)),
        "lists_as_step.pt": with_tensor(step=shared_lists(60)),
        "dicts_beside.pt": with_tensor(extra=shared_dicts(60)),
    }
    for name, raw in files.items():
        used, outcome = spent(raw, name)
        assert outcome == "loaded" and used < 2_000, (name, used, outcome)
    outcomes = scan_and_load(write_all(tmp_path, files))
    for name, (scan, load) in outcomes.items():
        assert scan.status == load.status == "loaded" and load.name is None and load.step is None, (name, load)


def test_opcode_floods_run_out_of_budget() -> None:
    flood = b"N0" * (budgets.MAX_NODES // 2 + 10)  # push None, pop it: no memory, only work
    used, outcome = spent(torch_zip(pickle_file(flood + as_dict("emb_params", GOOD_TENSOR)), DATA), "flood.pt")
    assert "too large" in outcome and used <= budgets.MAX_NODES + 1, outcome
    containers = b"]" * (budgets.MAX_NODES + 10)  # one byte each, ~60 bytes of memory each
    used, outcome = spent(torch_zip(pickle_file(containers)), "lists.pt")
    assert "too large" in outcome, outcome


def test_many_views_are_charged_to_the_byte_budget() -> None:
    """Each view is copied out on load, so 1,000 views of one 4 MB storage would be 4 GB: refused at scan too."""
    views = b"}" + b"".join(text(f"k{i}") + tensor((1, 1_000_000), (1_000_000, 1), numel=1_000_000) + b"s"
                            for i in range(1_000))
    raw = torch_zip(pickle_file(views), {"archive/data/0": float_bytes(1_000_000)})
    for lazy in (True, False):
        try:
            pickles.load_pickle(raw, "views.pt", lazy=lazy)
        except EmbeddingError as e:
            assert "expand past" in e.reason
        else:
            raise AssertionError("1,000 full views were accepted")


def _numbers() -> dict[str, bytes]:
    float_op = b"G" + np.float64("inf").byteswap().tobytes()
    nan_op = b"G" + np.float64("nan").byteswap().tobytes()
    return {"bool": b"\x88", "float": b"G" + np.float64(12.0).byteswap().tobytes(), "inf": float_op,
            "nan": nan_op, "tensor": GOOD_TENSOR, "huge": big(10**5000), "negative_huge": big(-(2**80)),
            "text_digits": text("9" * 5000), "list": shared_lists(30)}


def test_step_is_a_plain_int_or_nothing(tmp_path: Path) -> None:
    files = {f"step_{kind}.pt": with_tensor(step=value) for kind, value in _numbers().items()}
    files["step_ok.pt"] = with_tensor(step=integer(1500), name=big(10**5000))
    outcomes = scan_and_load(write_all(tmp_path, files))
    for name, (scan, load) in outcomes.items():
        assert scan.status == load.status == "loaded", (name, scan, load)
        assert load.step == (1500 if name == "step_ok.pt" else None), (name, load.step)
    data = formats.decode(files["step_huge.pt"], "step_huge.pt")
    assert metadata_for(data, "x").get("step") is None  # nothing left that str() could choke on


def test_safetensors_metadata_numbers_are_bounded(tmp_path: Path) -> None:
    from safetensors.torch import save

    vec = torch.ones(1, 768)
    files = {f"meta_{i}.safetensors": save({"emb_params": vec}, metadata={"step": step, "name": "n" * 10_000})
             for i, step in enumerate(["1e999", "9" * 5000, "inf", "-", "12.5", "True", "٣"])}
    files["meta_ok.safetensors"] = save({"emb_params": vec}, metadata={"step": "42"})
    outcomes = scan_and_load(write_all(tmp_path, files))
    for name, (scan, load) in outcomes.items():
        assert scan.status == load.status == "loaded", (name, scan, load)
        assert load.step == (42 if name == "meta_ok.safetensors" else None), (name, load.step)
        assert load.name is None or len(load.name) <= 300


def test_budget_counts_a_real_file_small() -> None:
    out = io.BytesIO()
    torch.save({"string_to_param": {"*": torch.ones(2, 768)}, "name": "x", "step": 3}, out)
    used, outcome = spent(out.getvalue(), "real.pt")
    assert outcome == "loaded" and used < 500, used
