"""``serve [DIR]``: the standalone page (prompt boxes, the Textual Inversion tab, Encode) on 127.0.0.1."""

from __future__ import annotations

import argparse
import sys

from ..records import Family


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="open the Textual Inversion tab in a browser (standalone host)",
                                   description="Serve a txt2img-like page with the Textual Inversion tab.")
    parser.add_argument("folder", nargs="?", default="embeddings", metavar="DIR",
                        help="embeddings folder (default: embeddings; created if missing)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7861, help="port (default: 7861)")
    parser.add_argument("--family", type=Family.parse, default=Family.SD1, metavar="sd1|sd2|sdxl",
                        help="active model family at start (default: sd1; switch on the page)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from ..app import serve
    except ImportError as e:
        print(f"error: the standalone host needs gradio and uvicorn ({e}); pip install -e '.[host]'",
              file=sys.stderr)
        return 2
    print(f"Textual Inversion tab: http://{args.host}:{args.port}/  (folder: {args.folder}; Ctrl+C to stop)",
          flush=True)
    serve(args.folder, host=args.host, port=args.port, family=args.family)
    return 0
