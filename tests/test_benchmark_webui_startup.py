"""benchmarks/webui_startup.py stays runnable: it refuses without WEBUI_DIR and reads the WebUI's timer lines.

A real run needs a WebUI checkout (opt-in, see the benchmark's docstring); nothing is timed here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import webui_startup  # noqa: E402


def test_without_a_webui_it_says_what_to_set():
    env = {k: v for k, v in os.environ.items() if k != "WEBUI_DIR"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "webui_startup.py")], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 2 and "WEBUI_DIR" in result.stderr


def test_timer_lines_as_the_webui_prints_them():
    startup = "Startup time: 16.1s (prepare environment: 0.2s, import torch: 3.2s, create ui: 4.0s)."
    assert webui_startup.timer_parts(startup) == {"total": 16.1, "prepare environment": 0.2, "import torch": 3.2,
                                                  "create ui": 4.0}
    loaded = "Model loaded in 62.2s (calculate hash: 10.9s, load textual inversion embeddings: 3.2s)."
    parts = webui_startup.timer_parts(loaded)
    assert parts["total"] == 62.2 and parts["load textual inversion embeddings"] == 3.2


def test_rss_is_sampled_until_the_last_samples_agree(monkeypatch):
    """A freed buffer or a background pass still moving the number is waited out: the median of the first
    ``window`` samples within ``spread`` MiB. (Samples scripted; one real sample of this process group.)"""
    import webui_process

    assert webui_process.rss_mib(os.getpgid(0)) > 0
    samples = iter([100.0, 180.0, 140.0, 141.0, 140.5, 139.9, 999.0])
    taken: list[float] = []
    monkeypatch.setattr(webui_process, "rss_mib", lambda group: taken.append(next(samples)) or taken[-1])
    monkeypatch.setattr(webui_process.time, "sleep", lambda seconds: None)
    assert webui_process.settled_rss(0, window=4, spread=2.0) == 140.25  # 140, 141, 140.5, 139.9
    assert len(taken) == 6
