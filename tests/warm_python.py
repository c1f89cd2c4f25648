"""``python -c CODE ARGS`` in a child forked from a warm interpreter that has already imported torch, numpy, PIL and
the package: still a separate process (its own memory, crash and exit code), but without the ~2 s of imports each
fresh one pays. For tests that isolate work in a child (a crash, a hang, a memory peak); a test whose point is what
a fresh interpreter imports or prints at start keeps ``subprocess``.

``run(code, args, env=None, cwd=None, timeout=None) -> subprocess.CompletedProcess`` (stdout and stderr as text):
``__name__ == "__main__"`` and ``sys.argv == ["-c", *args]`` as with ``python -c``; ``sys.path`` is this process's;
``env`` replaces the environment (``PYTHONPATH`` in it cannot change the imports already made); the exit code is
``sys.exit``'s, 1 after an uncaught exception (its traceback on stderr), ``-N`` for signal N. Past ``timeout`` the
child is killed and ``subprocess.TimeoutExpired`` raised.

The warm interpreter is spawned once per test session (``multiprocessing``'s "spawn": a fresh python, not a copy of
pytest and its threads) and forks each child with ``os.fork``; it is single-threaded apart from numpy's BLAS pool,
which is fork-safe, so its children start clean. It ends with pytest (end of its pipe, or the parent-death signal).
(Not multiprocessing's fork server: a process has one, and the browser tests' hosts use it with gradio preloaded
and without torch, as a user's host starts.)
Off Linux ``run`` is plain ``subprocess.run``.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

PRELOAD = ("torch", "numpy", "PIL.Image", "PIL.PngImagePlugin", "sd_embeddings.library",
           "sd_embeddings.formats.decoding")
PR_SET_PDEATHSIG = 1
_server: tuple[multiprocessing.Process, object] | None = None


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _child(code: str, args: list[str], env: dict | None, cwd: str | None, out: str, err: str) -> int:
    """In the forked child: what ``python -c`` would set up, then the code; returns the exit code."""
    for fd, path in ((1, out), (2, err)):
        handle = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.dup2(handle, fd)
        os.close(handle)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    if cwd is not None:
        os.chdir(cwd)
    sys.argv = ["-c", *args]
    try:
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__", "__builtins__": builtins})
        return 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1


def _serve(connection) -> None:
    """The warm interpreter: import, then fork one child per request and report its pid and its exit code."""
    _die_with_parent()
    for name in PRELOAD:
        __import__(name)
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        pid = os.fork()
        if pid == 0:
            _die_with_parent()
            code = 1
            try:
                code = _child(**request)
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        connection.send(pid)
        connection.send(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))


def _connection():
    global _server
    if _server is None or not _server[0].is_alive():
        context = multiprocessing.get_context("spawn")
        mine, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs,), daemon=True, name="warm-python")
        process.start()
        theirs.close()
        _server = (process, mine)
    return _server[1]


def run(code: str, args: list[str], env: dict | None = None, cwd: str | os.PathLike | None = None,
        timeout: float | None = None) -> subprocess.CompletedProcess:
    if not sys.platform.startswith("linux"):
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                              cwd=cwd, timeout=timeout)
    connection = _connection()
    with tempfile.TemporaryDirectory(prefix="warm-python-") as folder:
        out, err = Path(folder, "out"), Path(folder, "err")
        out.touch()
        err.touch()
        connection.send({"code": code, "args": list(args), "env": env, "cwd": None if cwd is None else str(cwd),
                         "out": str(out), "err": str(err)})
        pid = connection.recv()
        timed_out = not connection.poll(timeout)
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        returncode = connection.recv()
        stdout, stderr = out.read_text(), err.read_text()
    if timed_out:
        raise subprocess.TimeoutExpired(["python", "-c", "..."], timeout, stdout, stderr)
    return subprocess.CompletedProcess(["python", "-c", code, *args], returncode, stdout, stderr)
