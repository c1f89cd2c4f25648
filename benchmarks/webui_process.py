"""One WebUI process for ``webui_startup.py``: launched with a fresh settings file, driven over HTTP, its log read,
its resident memory sampled (the whole process group)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

ARGS = ["--skip-prepare-environment", "--skip-torch-cuda-test", "--skip-version-check", "--no-half", "--use-cpu",
        "all", "--no-download-sd-model", "--do-not-download-clip", "--api"]


def request(url: str, body: dict | None = None, timeout: float = 600) -> tuple[bytes, float]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout) as response:
        payload = response.read()
    return payload, time.perf_counter() - start


def settled_rss(group: int, window: int = 5, spread: float = 2.0, limit: float = 180.0) -> float:
    """Median of the last ``window`` one-second samples once they lie within ``spread`` MiB (a background pass or
    a freed buffer still moving the number is waited out); at ``limit`` s, the median of the last ``window``. One
    sample at the end read two stock runs 320 MiB apart."""
    samples: list[float] = []
    deadline = time.monotonic() + limit
    while True:
        samples.append(rss_mib(group))
        last = samples[-window:]
        if len(last) == window and (max(last) - min(last) <= spread or time.monotonic() > deadline):
            return statistics.median(last)
        time.sleep(1.0)


def trim_heap(pid: int) -> bool:
    """glibc's ``malloc_trim(0)`` called inside the process through gdb (if installed): the C heap's free pages go
    back, so that RSS counts what is held, not what was freed and kept. False when it could not be done."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return False
    done = subprocess.run([gdb, "-p", str(pid), "-batch", "-ex", "call (int)malloc_trim(0)"], capture_output=True,
                          text=True, timeout=120)
    return "$1 = " in done.stdout


def rss_mib(group: int) -> float:
    """Resident memory of every process in the WebUI's process group (launch.py runs the WebUI in-process)."""
    total = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getpgid(int(entry.name)) == group:
                total += int(re.search(r"VmRSS:\s*(\d+)", (entry / "status").read_text()).group(1))
        except (OSError, AttributeError):
            continue
    return total / 1024


class WebUI:
    def __init__(self, root: Path, port: int, embeddings: Path, mode: str, work: Path) -> None:
        self.root, self.port, self.embeddings, self.mode = root, port, embeddings, mode
        self.url = f"http://127.0.0.1:{port}"
        self.log = work / f"{mode}-{embeddings.name}-{time.time_ns()}.log"
        settings = work / f"settings-{time.time_ns()}.json"
        settings.write_text(json.dumps({"disabled_extensions": ["sd-embeddings"]} if mode == "stock" else {}))
        python = os.environ.get("WEBUI_PYTHON") or str(root / "venv" / "bin" / "python")
        self.args = [python, "launch.py", *ARGS, "--port", str(port), "--embeddings-dir", str(embeddings),
                     "--ui-settings-file", str(settings)]
        self.process: subprocess.Popen | None = None
        self.started = 0.0

    def __enter__(self) -> WebUI:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(self.args, cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True, env=env)
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ProcessLookupError):  # it may have exited on its own
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def excerpt(self) -> str:
        """The log without the per-file hash lines, which hide the cause at 10,000 files."""
        lines = [ln for ln in self.text().splitlines() if not ln.startswith("Calculating sha256")]
        return "\n".join(lines[:40] + ["..."] + lines[-20:])

    def wait_for(self, what: str, limit: float = 1800) -> str:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            line = next((ln for ln in self.text().splitlines() if what in ln), None)
            if line:
                return line
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.mode} WebUI exited:\n{self.excerpt()}")
            time.sleep(0.2)
        raise TimeoutError(f"no {what!r} line in {limit} s")

    def first_api_answer(self, limit: float = 1800) -> tuple[float, float]:
        """Seconds from launch until the listing first answers, and how long that answering call took."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                _, took = request(self.url + "/sdapi/v1/embeddings")
                return time.perf_counter() - self.started, took
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.mode} WebUI exited:\n{self.excerpt()}") from None
                time.sleep(0.2)
        raise TimeoutError("the API never answered")
