"""What a user waits for at the command line, and what the standalone host holds after an Encode.

    python benchmarks/cli_start.py              # best of 3 runs each
    python benchmarks/cli_start.py --repeat 1   # one run each (quick)

Each command runs as users run it, ``python -m sd_embeddings ...`` in a fresh process, and is measured by its
process time (user + system CPU of the child, what start-up work costs regardless of other load) and wall time:
  scan empty    ``scan`` of an empty folder                    goal (issue 13, item 7): <= 0.3 s process time
  scan 15       ``scan`` of 15 embedding files (every format)   goal (item 7): <= 0.5 s
  encode        ``encode`` of a prompt using two of them, no --model   goal (item 8): <= 0.5 s
  encode call   one Encode without a model inside a running host (in this process, per call)   goal: <= 0.5 s
  host RSS      ``serve``'s resident memory after one Encode through the page's API   goal (item 8): <= 400 MB
It also says whether the scan process imported torch (item 7 wants it not to) and prints one line per measurement:
``name  process s  wall s  goal  ok|OVER``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass
class Measure:
    name: str
    process_s: float
    wall_s: float
    goal: float
    unit: str = "s"

    def line(self) -> str:
        verdict = "ok" if self.process_s <= self.goal else "OVER"
        if self.unit == "MB":
            return f"{self.name:<12} {self.process_s:8.0f} MB{'':12} goal <= {self.goal:.0f} MB   {verdict}"
        return (f"{self.name:<12} {self.process_s:8.3f} s  {self.wall_s:7.3f} s wall   goal <= {self.goal:.1f} s   "
                f"{verdict}")


def environment(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SD_EMBEDDINGS_")}
    return {**env, "PYTHONPATH": str(ROOT), "SD_EMBEDDINGS_CACHE_DIR": str(cache)}


def run_cli(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(process seconds, wall seconds, stderr) of one ``python -m sd_embeddings`` run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, result.stderr


def best(name: str, args: list[str], env: dict[str, str], goal: float, repeat: int) -> Measure:
    runs = [run_cli(args, env) for _ in range(repeat)]
    cpu, wall, _ = min(runs)
    return Measure(name, cpu, wall, goal)


def make_files(folder: Path) -> None:
    """15 files: the six ``samples`` embeddings (every format, with sidecars) and nine more .safetensors."""
    import torch

    from sd_embeddings.cli.samples import write_samples
    from sd_embeddings.formats import decoding as formats
    from sd_embeddings.records import EmbeddingData

    write_samples(folder)
    for index in range(9):
        vec = torch.randn(2 + index, 768 if index % 2 else 1024, generator=torch.Generator().manual_seed(index))
        formats.write_safetensors(EmbeddingData(vec, f"extra{index}"), folder / f"extra{index}.safetensors",
                                  f"extra{index}")
    count = sum(1 for path in folder.rglob("*") if path.suffix in (".pt", ".safetensors", ".png")
                and ".preview." not in path.name)
    if count != 15:
        raise RuntimeError(f"expected 15 embedding files, made {count}")


def encode_call(folder: Path, calls: int = 20) -> Measure:
    """One Encode without a model as the host runs it (library already scanned): process time per call."""
    from sd_embeddings.encode.encoding import encode_report
    from sd_embeddings.library import Library

    library = Library([folder], background_hashing=False)
    library.refresh()
    encode_report(library, "warm-up", "")  # the tokenizer's vocabulary loads once per process
    cpu, wall = time.process_time(), time.perf_counter()
    for index in range(calls):
        encode_report(library, f"a cat {index}, (sample-style:1.2) BREAK [dog|cow]", "sample-negative, blurry")
    return Measure("encode call", (time.process_time() - cpu) / calls, (time.perf_counter() - wall) / calls, 0.5)


def imports_torch(folder: Path, env: dict[str, str]) -> bool:
    _, _, err = run_cli(["-X", "importtime", "-m", "sd_embeddings", "scan", str(folder)], env)
    return any(line.split("|")[-1].strip() == "torch" for line in err.splitlines() if line.startswith("import time"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def host_rss_after_encode(folder: Path, env: dict[str, str]) -> float:
    """Start ``serve``, press Encode once through gradio's HTTP API, read the host's VmRSS (MB)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "sd_embeddings", "serve", str(folder), "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        encode_once(base)
        status = Path(f"/proc/{process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()


def wait_until_up(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the host exited early")
        with contextlib.suppress(OSError), urllib.request.urlopen(base + "/sd-embeddings/v1/version", timeout=5):
            return
        time.sleep(0.3)
    raise RuntimeError("the host did not start")


def encode_once(base: str) -> str:
    """The Encode button's handler (gradio names the endpoint after the function: ``handler``)."""
    body = json.dumps({"data": ["a cat, sample-style", "sample-negative", "sd1"]}).encode()
    request = urllib.request.Request(base + "/gradio_api/call/handler", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        event = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{base}/gradio_api/call/handler/{event}", timeout=300) as response:
        stream = response.read().decode()
    if "sdemb-report" not in stream:
        raise RuntimeError(f"Encode did not answer with a report: {stream[:300]}")
    return stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-host", action="store_true", help="skip the host RSS measurement (no gradio needed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        empty, files = root / "empty", root / "files"
        empty.mkdir()
        make_files(files)
        env = environment(root / "cache")
        cli = ["-m", "sd_embeddings"]
        results = [
            best("scan empty", [*cli, "scan", str(empty)], env, 0.3, args.repeat),
            best("scan 15", [*cli, "scan", str(files)], env, 0.5, args.repeat),
            best("encode", [*cli, "encode", "a cat, sample-style", "--negative", "sample-negative",
                            "--folder", str(files)], env, 0.5, args.repeat),
        ]
        results.append(encode_call(files))
        if not args.no_host:
            results.append(Measure("host RSS", host_rss_after_encode(files, env), 0, 400, unit="MB"))
        print(f"load average {os.getloadavg()[0]:.2f}; best of {args.repeat}; process time = user + system CPU")
        for measure in results:
            print(measure.line())
        print(f"scan imports torch: {'yes' if imports_torch(empty, env) else 'no'} (goal: no)")


if __name__ == "__main__":
    main()
