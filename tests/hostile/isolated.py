"""Decode files in a child process, so a native crash (SIGSEGV) or a hang fails one test instead of killing pytest.
(The child is forked from an interpreter that has imported the package: ``warm_python``.)

The child runs the real scan (``scan_file``) and the real load (``decode``) on each file and prints one JSON line
per file; the parent reads them back. A child killed by a signal names the file it was on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import warm_python

ROOT = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT_S = 300
"""A hang guard only (the child exits as soon as it is done); no test asserts on time."""

_CHILD = r"""
import json, os, sys
from sd_embeddings.errors import EmbeddingError
from sd_embeddings.formats import decoding

def outcome(call):
    try:
        value = call()
    except EmbeddingError as e:
        return {"status": e.status, "reason": e.reason, "type": type(e).__name__}
    except BaseException as e:
        return {"status": "escaped", "reason": "", "type": type(e).__name__}
    return {"status": "loaded", "reason": "", "type": "", "parts": {k: list(v) for k, v in value.shape.parts.items()},
            "step": value.step, "name": value.name}

for path in sys.argv[1:]:
    print(json.dumps({"file": os.path.basename(path), "started": True}), flush=True)
    raw = open(path, "rb").read()
    scan = outcome(lambda: decoding.scan_file(path, len(raw)))
    load = outcome(lambda: decoding.decode(raw, path))
    print(json.dumps({"file": os.path.basename(path), "scan": scan, "load": load}), flush=True)
"""


@dataclass
class Outcome:
    status: str
    reason: str
    type: str
    parts: dict | None = None
    step: int | None = None
    name: str | None = None


def scan_and_load(paths: list[Path]) -> dict[str, tuple[Outcome, Outcome]]:
    """``{file name: (scan outcome, load outcome)}``; fails the test if the child dies or hangs."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = warm_python.run(_CHILD, list(map(str, paths)), env=env, cwd=ROOT, timeout=CHILD_TIMEOUT_S)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0:
        last = lines[-1]["file"] if lines else "?"
        raise AssertionError(f"decoder process died (exit {done.returncode}) on {last}: {done.stderr[-2000:]}")
    return {line["file"]: (Outcome(**line["scan"]), Outcome(**line["load"])) for line in lines if "scan" in line}


def write_all(folder: Path, files: dict[str, bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, raw in files.items():
        (folder / name).write_bytes(raw)
        paths.append(folder / name)
    return paths
