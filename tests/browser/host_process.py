"""Host processes forked from an interpreter that has already imported the host: a real, separate process running
the CLI (``sd_embeddings.__main__.main``, as ``python -m sd_embeddings`` does), up in about a second instead of
several, because python, gradio, fastapi and the package are imported once per test session, not once per host.

``launch(args, env, cwd, log) -> Forked`` forks the process from multiprocessing's fork server, whose one start imports
``PRELOAD``. The process gets ``env`` as its whole environment (the fork server's own is the one pytest had when
it started), writes stdout and stderr to ``log``, and gets SIGTERM when the fork server ends, which it does with the
pytest process: a killed test run leaves no host behind. ``Forked`` answers the part of ``subprocess.Popen`` the
tests use (``pid``, ``poll``, ``wait``, ``terminate``, ``kill``).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import subprocess
import sys
from multiprocessing.process import BaseProcess

PRELOAD = ["sd_embeddings.__main__", "sd_embeddings.app", "sd_embeddings.cli.serve", "gradio", "uvicorn",
           "fastapi", "starlette.middleware.cors", "host_process"]
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(PRELOAD)
PR_SET_PDEATHSIG = 1


def _run(args: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    """In the new process: the parent-death signal, the environment, the folder, the log, then the CLI."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no parent-death signal
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    handle = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(handle, 1)
    os.dup2(handle, 2)
    from sd_embeddings.__main__ import main

    sys.exit(main(args))


class Forked:
    """``subprocess.Popen``'s ``pid``, ``poll``, ``wait``, ``terminate`` and ``kill`` for a forked process."""

    def __init__(self, process: BaseProcess) -> None:
        self.process = process
        self.pid = process.pid

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(f"host process {self.pid}", timeout or 0)
        return self.process.exitcode

    def terminate(self) -> None:
        self.process.terminate()

    def kill(self) -> None:
        self.process.kill()


def launch(args: list[str], env: dict[str, str], cwd: str, log: str) -> Forked:
    # daemon: should one still run when pytest exits, multiprocessing stops it rather than waiting for it
    process = _CONTEXT.Process(target=_run, args=(args, env, cwd, log), daemon=True)
    process.start()
    return Forked(process)
