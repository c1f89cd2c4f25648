"""Shared pytest setup: the package is imported from the repository, never from a WebUI."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


# `make test` runs two workers on two cores: an example's time says nothing about the code under test, so no
# property test may fail on a per-example deadline or a "too slow" health check (each test bounds work by counts).
settings.register_profile("shared-cores", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-cores")


SHALLOW_LAYERS = 2
"""Depth of the random-weight test encoders: 2 keeps every hidden-state choice (last, penultimate, skip) distinct."""


@pytest.fixture
def shallow_models(monkeypatch, tmp_path):
    """Two-layer random-weight text encoders with the real widths (the tests-only switch: reports without a model
    then run them), and a hash cache inside the test's tmp_path. The encoders are built once per test session
    (``text_encoders`` caches them per family and depth); test_conditioning asks for the same ones."""
    monkeypatch.setenv("SD_EMBEDDINGS_TEST_RANDOM_ENCODERS", str(SHALLOW_LAYERS))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _package_logging_restored():
    """Whatever a test does to the package's loggers is undone after it. The WebUI adapter's start attaches its
    console handler to ``sd_embeddings`` (propagation off): left there, it would hide records from later tests'
    ``caplog`` and make the console tests see a handler they did not add, depending on which file ran first."""
    touched = [logging.getLogger(name) for name in ("sd_embeddings", "sd_embeddings.webui.console")]
    saved = [(list(lg.handlers), lg.level, lg.propagate, lg.disabled) for lg in touched]
    yield
    for lg, (handlers, level, propagate, disabled) in zip(touched, saved):
        lg.handlers[:] = handlers
        lg.propagate, lg.disabled = propagate, disabled
        lg.setLevel(level)  # through setLevel: it empties logging's per-logger level cache
