"""The console lines under the WebUI's real logging set-up (no fakes: Python's logging, as the WebUI leaves it)."""

from __future__ import annotations

import logging

import pytest

from sd_embeddings.webui import console


@pytest.fixture
def clean_logging():
    """Root and package loggers as a fresh WebUI process has them; restored afterwards."""
    root, package = logging.root, logging.getLogger("sd_embeddings")
    saved = (list(root.handlers), root.level, list(package.handlers), package.level, package.propagate,
             console.logger.level)
    root.handlers, package.handlers = [], []
    package.setLevel(logging.NOTSET)
    package.propagate = True
    console.logger.setLevel(logging.NOTSET)
    yield root
    root.handlers, package.handlers = saved[0], saved[2]
    root.setLevel(saved[1])
    package.setLevel(saved[3])
    package.propagate = saved[4]
    console.logger.setLevel(saved[5])


def test_summary_and_plain_warnings_under_the_webuis_implicit_root_handler(clean_logging, capsys):
    """The WebUI's prepare step calls ``logging.debug`` before extensions load: a WARNING root handler exists."""
    clean_logging.handlers = []  # pytest's own capture handlers, added for the test's body
    logging.debug("Installing extension")  # what launch_utils.run_extensions_installers does; runs basicConfig
    assert clean_logging.handlers and clean_logging.level == logging.WARNING
    console.setup_logging()
    console.say("Textual inversion: 2 loaded, 1 incompatible (SDXL) — see the tab")
    logging.getLogger("sd_embeddings.library").warning("Embedding %s: %s", "bad.pt", "not a zip")
    logging.getLogger("sd_embeddings.library").info("chatter")
    err = capsys.readouterr().err
    assert err == "Textual inversion: 2 loaded, 1 incompatible (SDXL) — see the tab\nEmbedding bad.pt: not a zip\n"


def test_a_log_level_the_user_asked_for_is_left_to_the_webui(clean_logging, capsys):
    clean_logging.handlers = []
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    clean_logging.addHandler(handler)  # the WebUI's setup_logging for --loglevel
    clean_logging.setLevel(logging.INFO)
    console.setup_logging()
    assert logging.getLogger("sd_embeddings").handlers == []
