"""Command line: ``python -m sd_embeddings <command>``; each command is a module under ``sd_embeddings/cli/``.

Exit codes: 0 ok, 1 some files bad (everything else is still printed), 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .cli.arguments import USAGE_ERROR, Parser, add_verbose, version_text
from .cli.safe_output import get_logger, safe_output

logger = get_logger("sd_embeddings")

# Each module has ``register(subparsers)`` that adds its sub-command and sets ``func(args) -> int``.
COMMANDS = ("scan", "inspect", "convert", "serve", "samples", "encode")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m sd_embeddings",
                    description="Scan, inspect, convert and try Textual Inversion embeddings.")
    parser.add_argument("--version", action="version", version=version_text())
    add_verbose(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"sd_embeddings.cli.{name}").register(subparsers)
    for sub in subparsers.choices.values():
        add_verbose(sub, default=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    with safe_output():  # names from files reach the terminal escaped, in every command and log line
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(message)s")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return USAGE_ERROR
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug: one line for the user, the traceback with -v
        logger.info("%s failed", args.command, exc_info=True)
        hint = "" if args.verbose else " (run with -v for the details)"
        print(f"error: {args.command}: {type(e).__name__}: {e}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
