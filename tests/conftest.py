"""Shared pytest setup: the package is imported from the repository, never from a WebUI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


@pytest.fixture
def shallow_models(monkeypatch, tmp_path):
    """One-layer random-weight text encoders with the real widths (the tests-only switch: reports without a model
    then run them), and a hash cache inside the test's tmp_path."""
    monkeypatch.setenv("SD_EMBEDDINGS_TEST_RANDOM_ENCODERS", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
