"""What every sub-command shares: a parser whose errors are one line, and argument types that say the fix."""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from typing import NoReturn

from ..records import Family

USAGE_ERROR = 2


class Parser(argparse.ArgumentParser):
    """``argparse`` prints the whole usage block before an error; users need the one line that says what to fix."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see: {self.prog} --help)", file=sys.stderr)
        sys.exit(USAGE_ERROR)


def version_text() -> str:
    """``sd-embeddings 0.1.0``: the installed distribution's version (pyproject's), as pip reports it."""
    try:
        return f"sd-embeddings {metadata.version('sd-embeddings')}"
    except metadata.PackageNotFoundError:  # run from a checkout or a WebUI extension folder, not pip-installed
        return "sd-embeddings (not installed with pip; version unknown)"


def family_arg(text: str) -> Family:
    """``--family`` values: ``sd1``, ``sd2``, ``sdxl`` and their spellings (``SD1.5``, ``xl``...)."""
    try:
        return Family.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def at_least_one(text: str) -> int:
    """Counts such as ``--steps`` and ``--clip-skip``: whole numbers from 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is out of range; use 1 or more")
    return value


def add_verbose(parser: argparse.ArgumentParser, default: object = False) -> None:
    """``-v`` before or after the sub-command; the sub-command's copy keeps the main one's value when absent."""
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="log every file as it is read")


def add_explicit_only(parser: argparse.ArgumentParser) -> None:
    """``--explicit-only``: the "bare keywords trigger embeddings" setting turned off (``encode``, ``serve``)."""
    parser.add_argument("--explicit-only", action="store_true",
                        help="only embedding:name uses an embedding; a keyword typed alone stays a word "
                             "(default: a keyword anywhere in the prompt uses its embedding, as in the WebUI)")
