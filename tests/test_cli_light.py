"""`scan` is a light path: headers only and no torch; `scan --verify` reads every value.

Real files written at test time (a1111 .pt, safetensors, SD2, SDXL, text-chunk and pixel PNGs from `samples`);
the torch check runs `main()` in a fresh process, as a user's command does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from factories import vectors, write_safetensors

from sd_embeddings.__main__ import main

ROOT = Path(__file__).resolve().parent.parent


def fresh_process(code: str, tmp_path: Path) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    return json.loads(result.stderr.strip().splitlines()[-1])


def test_scan_of_every_format_imports_no_torch(tmp_path):
    folder = tmp_path / "emb"
    assert main(["samples", str(folder)]) == 0
    code = ("import sys, json\nfrom sd_embeddings.__main__ import main\n"
            f"rc = main(['scan', {str(folder)!r}, '--json'])\n"
            "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules}), file=sys.stderr)\n")
    assert fresh_process(code, tmp_path) == {"rc": 0, "torch": False}


def test_verify_reads_values_that_a_header_scan_cannot_see(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bad = vectors(2)
    bad[1, 5] = torch.nan
    write_safetensors(tmp_path / "emb" / "nanny.safetensors", {"emb_params": bad})
    write_safetensors(tmp_path / "emb" / "fine.safetensors", {"emb_params": vectors(1)})
    assert main(["scan", str(tmp_path / "emb"), "--json"]) == 0
    listed = {e["keyword"]: e["status"] for e in json.loads(capsys.readouterr().out)}
    assert listed == {"nanny": "loaded", "fine": "loaded"}  # the header is sound; values are not read
    assert main(["scan", str(tmp_path / "emb"), "--json", "--verify"]) == 1
    entries = {e["keyword"]: e for e in json.loads(capsys.readouterr().out)}
    assert entries["nanny"]["status"] == "corrupt" and "NaN" in entries["nanny"]["reason"]
    assert entries["fine"]["status"] == "loaded"
