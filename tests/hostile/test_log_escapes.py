"""Log lines carry file names: a name holding ``ESC ]0;...BEL`` / ``ESC [2J`` must not retitle or clear the
operator's terminal, and one holding ``\\n`` must not print a whole line of its own (a forged ``INFO all 12
embeddings verified``). Every record of ours is escaped before any handler sees it: the CLI's ``-v``, the WebUI
console handler and a handler the WebUI installs itself (``--loglevel``). Real files with hostile names are scanned
in fresh processes (logging is configured once per process); tracebacks are checked in-process."""

from __future__ import annotations

import ast
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sd_embeddings.formats.logs import get_logger

ROOT = Path(__file__).resolve().parents[2]
FORGED = "INFO all 12 embeddings verified, nothing unsafe"
HOSTILE_NAMES = ["\x1b]0;pwned-title\x07\x1b[2J\x1b[31mFAKE\x1b[0m.pt", f"x\n{FORGED}\n.pt", f"y\r{FORGED}\u202e.pt"]
UNSAFE_PICKLE = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


@pytest.fixture
def hostile_folder(tmp_path) -> Path:
    folder = tmp_path / "embeddings"
    folder.mkdir()
    for name in HOSTILE_NAMES:
        (folder / name).write_bytes(UNSAFE_PICKLE)  # refused as unsafe: one warning line naming the file
    return folder


def _python(code: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300,
                          errors="surrogateescape")
    assert done.returncode in (0, 1), done.stderr
    return done.stdout + done.stderr


def assert_terminal_safe(output: str, names_expected: int = len(HOSTILE_NAMES)) -> None:
    assert "\x1b" not in output and "\x07" not in output and "\r" not in output and "\u202e" not in output
    assert not [line for line in output.splitlines() if line.startswith(FORGED)]
    assert output.count("\\x1b") >= 1 and output.count(f"\\n{FORGED}") + output.count(f"\\r{FORGED}") >= 2
    assert output.count("refused to load 'os.system'") >= names_expected


SCAN = "from sd_embeddings.library import Library; Library([__import__('sys').argv[1]], " \
       "background_hashing=False).refresh()"


def test_the_webui_console_handler(hostile_folder):
    output = _python("from sd_embeddings.webui import console; console.setup_logging(); " + SCAN, str(hostile_folder))
    assert_terminal_safe(output)


def test_a_handler_the_webui_installs_itself(hostile_folder):
    """``--loglevel``: the WebUI configures the root logger with its own formatter; ours only propagate to it."""
    output = _python("import logging; logging.basicConfig(format='%(name)s: %(message)s'); " + SCAN,
                     str(hostile_folder))
    assert_terminal_safe(output)


def test_the_command_line_verbose_log(hostile_folder):
    output = _python("import sys; from sd_embeddings.__main__ import main; sys.exit(main(sys.argv[1:]))",
                     "scan", str(hostile_folder), "-v")
    assert_terminal_safe(output)


def test_a_traceback_keeps_its_lines_and_escapes_the_exception_text():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    package = logging.getLogger("sd_embeddings")
    package.addHandler(handler)
    try:
        try:
            raise ValueError(f"bad name x\n{FORGED}\x1b[2J")
        except ValueError:
            get_logger("sd_embeddings.tests.escapes").exception("scan of %s failed", f"a\n{FORGED}")
    finally:
        package.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"scan of a\\n{FORGED} failed"
    assert lines[1] == "Traceback (most recent call last):" and lines[2].startswith("  File ")
    assert lines[-1] == f"ValueError: bad name x\\n{FORGED}\\x1b[2J"
    assert not [line for line in lines if line.startswith(FORGED)] and "\x1b" not in stream.getvalue()


def test_every_module_takes_its_logger_from_get_logger():
    """The class, not the example: a module that made its logger with ``logging.getLogger`` would skip the filter."""
    offenders = []
    for path in sorted((ROOT / "sd_embeddings").rglob("*.py")):
        if path.name == "logs.py" and path.parent.name == "formats":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("getLogger", "Logger") and \
                    isinstance(node.value, ast.Name) and node.value.id == "logging":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
