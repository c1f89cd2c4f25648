"""The console lines (the adapter chosen, the summary, one line per bad file) reach the WebUI's console.

The tests with ``clean_logging`` use no fakes: Python's logging, as the WebUI leaves it.

Fakes (conftest): ``modules.shared.cmd_opts`` with and without ``--loglevel``. The root handler here is the one
Python's ``logging.warning()`` installs when nothing is configured (reForge calls it before extensions load),
at WARNING: it hid our INFO lines, and must not make us think the user configured logging.
"""

from __future__ import annotations

import io
import logging
import sys

import pytest

from sd_embeddings.webui import console


@pytest.fixture
def package_logger():
    """The ``sd_embeddings`` logger restored afterwards (handlers, level, propagation)."""
    package = logging.getLogger("sd_embeddings")
    own = logging.getLogger(console.__name__)
    saved = (list(package.handlers), package.level, package.propagate, own.level)
    yield package
    package.handlers[:] = saved[0]
    package.level, package.propagate = saved[1], saved[2]
    own.setLevel(saved[3])


def test_the_start_line_is_printed_beside_a_default_root_handler(webui, package_logger, monkeypatch):
    webui.modules["modules.shared"].cmd_opts.loglevel = None
    monkeypatch.delenv("SD_WEBUI_LOG_LEVEL", raising=False)
    root_stream, our_stream = io.StringIO(), io.StringIO()
    default_root = logging.StreamHandler(root_stream)  # what logging.basicConfig() / logging.warning() leave
    monkeypatch.setattr(logging.root, "handlers", [*logging.root.handlers, default_root])
    monkeypatch.setattr(sys, "stderr", our_stream)
    console.setup_logging()
    console.setup_logging()  # Reload UI: still one handler
    console.say("Textual inversion (sd-embeddings): using the a1111 adapter (X.tokenize_line)")
    logging.getLogger("sd_embeddings.library.reading").warning("Embedding bad.pt: refused")
    assert our_stream.getvalue().splitlines() == [
        "Textual inversion (sd-embeddings): using the a1111 adapter (X.tokenize_line)", "Embedding bad.pt: refused"]
    assert root_stream.getvalue() == ""  # printed once, not again by the root handler


def test_a_log_level_the_user_chose_is_left_to_the_webui(webui, package_logger, monkeypatch):
    webui.modules["modules.shared"].cmd_opts.loglevel = None
    monkeypatch.setenv("SD_WEBUI_LOG_LEVEL", "DEBUG")
    console.setup_logging()
    assert not [h for h in package_logger.handlers if h.get_name() == "sd-embeddings-console"]
    monkeypatch.delenv("SD_WEBUI_LOG_LEVEL")
    webui.modules["modules.shared"].cmd_opts.loglevel = "INFO"
    console.setup_logging()
    assert not [h for h in package_logger.handlers if h.get_name() == "sd-embeddings-console"]


class _NeoRootHandler(logging.Handler):
    """Stands in for Forge Neo's root handler (``modules/logging_config.py``: a ``logging.Handler`` subclass that
    writes through tqdm), which Neo installs itself with ``basicConfig(force=True)`` before extensions load, the root
    at ERROR unless ``--loglevel``/``SD_WEBUI_LOG_LEVEL`` says otherwise."""

    def __init__(self, stream: io.StringIO) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        self.stream.write(self.format(record) + "\n")


def test_the_start_line_is_printed_when_the_webui_itself_sets_the_root_to_error(webui, package_logger, monkeypatch):
    """Forge Neo without ``--loglevel``: a non-default root handler, the root at ERROR. Neither is the user's
    choice, and with the records left to the root the start line, the summary and the warnings vanished."""
    webui.modules["modules.shared"].cmd_opts.loglevel = None
    monkeypatch.delenv("SD_WEBUI_LOG_LEVEL", raising=False)
    root_stream, our_stream = io.StringIO(), io.StringIO()
    monkeypatch.setattr(logging.root, "handlers", [_NeoRootHandler(root_stream)])
    level = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        monkeypatch.setattr(sys, "stderr", our_stream)
        console.setup_logging()
        console.say("Textual inversion (sd-embeddings): using the forge2 adapter (X.tokenize_line)")
        logging.getLogger("sd_embeddings.library.reading").warning("Embedding bad.pt: refused")
    finally:
        logging.root.setLevel(level)
    assert our_stream.getvalue().splitlines() == [
        "Textual inversion (sd-embeddings): using the forge2 adapter (X.tokenize_line)", "Embedding bad.pt: refused"]
    assert root_stream.getvalue() == ""


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
