"""Fixtures of the hostile suite and its closing tally line; the helpers live in ``hostile_kit``."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_kit import TALLY, Folder, fill_good


@pytest.fixture
def folder(tmp_path: Path) -> Folder:
    root = tmp_path / "embeddings"
    root.mkdir()
    return Folder(root, tmp_path / "PWNED", fill_good(root))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY["inputs"]:
        terminalreporter.write_line("hostile inputs: {inputs} tried, code executed {code_executed}, "
                                    "crashes {crashes}, good files lost {good_lost}".format(**TALLY))
