"""The benchmarks stay runnable: each runs end to end on a tiny input (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_scan_benchmark_runs():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scan.py"), "--n", "40", "--repeat", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "N = 40 files (40 entries)" in result.stdout
    assert "cold scan vs webui first load" in result.stdout


def test_pickle_memory_benchmark_runs():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pickle_memory.py"), "--rows", "10"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "failed" not in result.stdout and "not-an-embedding: the tensor has vectors of 40,000" in result.stdout
    assert result.stdout.count("loaded (10, 4096)") == 4


@pytest.mark.slow
def test_cards_scale_benchmark_runs(tmp_path):
    """Starts a real host (gradio), so it is with the slow tests."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cards_scale.py"), "--count", "30",
                             "--folders", "6", "--folder", str(tmp_path / "library")],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "first screen (inline document)" in result.stdout and "whole list (again; 30 cards" in result.stdout
