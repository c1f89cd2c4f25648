"""Command line: ``python -m sd_embeddings <command>``; each command is a module under ``sd_embeddings/cli/``.

Exit codes: 0 ok, 1 some files bad (everything else is still printed), 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Each module has ``register(subparsers)`` that adds its sub-command and sets ``func(args) -> int``.
COMMANDS = ("scan", "inspect", "convert", "serve", "samples", "encode")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sd_embeddings",
                                     description="Scan, inspect, convert and try Textual Inversion embeddings.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every file as it is read")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"sd_embeddings.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(message)s")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
