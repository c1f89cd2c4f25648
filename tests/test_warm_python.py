"""``warm_python.run`` behaves as ``python -c`` for what the isolating tests rely on: arguments, output, exit codes
(including a crash and a hang), environment and folder, and a memory peak that the warm parent cannot hide."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import warm_python


def test_arguments_output_and_exit_code() -> None:
    done = warm_python.run("import sys; print('out', sys.argv); print('err', file=sys.stderr); sys.exit(3)",
                           ["a", "b c"])
    assert (done.returncode, done.stdout, done.stderr) == (3, "out ['-c', 'a', 'b c']\n", "err\n")
    assert warm_python.run("print(__name__)", []).stdout == "__main__\n"
    assert warm_python.run("import sys; sys.exit('why')", []).stderr == "why\n"


def test_an_exception_exits_1_with_its_traceback() -> None:
    done = warm_python.run("raise ValueError('boom')", [])
    assert done.returncode == 1 and "ValueError: boom" in done.stderr


def test_a_crash_is_a_negative_signal_and_the_next_child_runs() -> None:
    assert warm_python.run("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", []).returncode == \
        -signal.SIGSEGV
    assert warm_python.run("print(1)", []).stdout == "1\n"


def test_a_hang_is_killed_at_the_timeout() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        warm_python.run("import time; print('started', flush=True); time.sleep(600)", [], timeout=1)
    assert warm_python.run("print(2)", []).stdout == "2\n"


def test_environment_and_folder(tmp_path) -> None:
    done = warm_python.run("import os; print(sorted(os.environ), os.getcwd())", [], env={"ONLY": "1"}, cwd=tmp_path)
    assert done.stdout == f"['ONLY'] {tmp_path}\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/clear_refs is Linux's")
def test_a_peak_in_the_child_shows_after_the_high_water_mark_is_reset() -> None:
    """The memory-bomb tests' measurement (``/proc/self/clear_refs`` then ``VmHWM``) in a forked child: 300 MB
    touched after the reset must show, whatever the warm parent's own peak was."""
    code = """
import json
def kib(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field + ":"))
open("/proc/self/clear_refs", "w").write("5")
before = kib("VmRSS")
blob = bytearray(300 * 2**20)
blob[::4096] = b"x" * len(blob[::4096])
print((kib("VmHWM") - before) // 1024)
"""
    assert int(warm_python.run(code, []).stdout) >= 299
