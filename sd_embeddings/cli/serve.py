"""``serve [DIR]``: the standalone page (prompt boxes, the Textual Inversion tab, Encode) on 127.0.0.1.

The port is bound before the URL is printed: a busy port is one line with a free port to try, never a URL that
leads nowhere followed by a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import socket
import sys

from ..records import Family
from .arguments import USAGE_ERROR, add_explicit_only, family_arg

CANNOT_START = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="open the Textual Inversion tab in a browser (standalone host)",
                                   description="Serve a txt2img-like page with the Textual Inversion tab.")
    parser.add_argument("folder", nargs="?", default="embeddings", metavar="DIR",
                        help="embeddings folder (default: embeddings; created if missing)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7861, help="port (default: 7861)")
    parser.add_argument("--family", type=family_arg, default=Family.SD1, metavar="sd1|sd2|sdxl",
                        help="active model family at start (default: sd1; switch on the page)")
    parser.add_argument("--model", metavar="PATH",
                        help="local diffusers folder, text-encoder folder or .safetensors checkpoint: Encode then "
                             "shows conditioning values (loaded on the first Encode, kept after)")
    parser.add_argument("--auth", metavar="USER:PASS", default=None,
                        help="require this user and password (HTTP Basic); needed with a --host other than loopback")
    parser.add_argument("--no-auth", action="store_true",
                        help="serve a non-loopback --host without a password (prints a warning)")
    add_explicit_only(parser)
    parser.set_defaults(func=run)


def folder_problem(folder: str) -> str | None:
    """Why ``folder`` cannot be the embeddings folder, or None (a missing folder is created later)."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        return f"{folder} is a file, not a folder: give the folder that holds your embeddings (created if missing)"
    return None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (uvicorn's options: reuse a port in TIME_WAIT, not one in use)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def free_port_after(host: str, port: int, tries: int = 50) -> int | None:
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        with contextlib.suppress(OSError), bind(host, candidate):
            return candidate
    return None


def bind_or_explain(host: str, port: int) -> socket.socket | None:
    try:
        return bind(host, port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            other = free_port_after(host, port)
            hint = f"try --port {other}" if other else "stop the other server or pick another --port"
            print(f"error: port {port} is in use on {host}; {hint}", file=sys.stderr)
        else:
            print(f"error: cannot listen on {host}:{port}: {e.strerror or e}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    problem = folder_problem(args.folder)
    if problem is None and args.model and not os.path.exists(args.model):
        problem = f"no such model path: {args.model}"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return USAGE_ERROR
    try:
        from ..app import serve
    except ImportError as e:
        print(f"error: the standalone host needs gradio and uvicorn ({e}); pip install -e '.[host]'",
              file=sys.stderr)
        return USAGE_ERROR
    from ..tab.host_auth import PolicyError, listen_policy

    try:
        credentials, warning = listen_policy(args.host, args.auth, args.no_auth)
    except PolicyError as e:
        print(f"error: {e}", file=sys.stderr)
        return USAGE_ERROR
    if warning:
        print(warning, file=sys.stderr, flush=True)
    sock = bind_or_explain(args.host, args.port)
    if sock is None:
        return CANNOT_START
    port = sock.getsockname()[1]  # --port 0: the one the system chose
    print(f"Textual Inversion tab: http://{args.host}:{port}/  (folder: {args.folder}; Ctrl+C to stop)",
          flush=True)
    with sock:
        serve(args.folder, host=args.host, port=port, family=args.family, model=args.model, sock=sock,
              credentials=credentials, no_auth=args.no_auth, bare_keywords=not args.explicit_only)
    return 0
