"""Opt-in: start a real WebUI (AUTOMATIC1111 or a fork) with this extension installed. Skipped unless ``WEBUI_DIR``
is set.

Environment:
  WEBUI_DIR      the WebUI checkout (required); the repo is symlinked into ``$WEBUI_DIR/extensions/sd-embeddings``
                 if nothing is there yet (and the link is removed afterwards; a dangling link a killed run left
                 behind is replaced)
  WEBUI_PYTHON   its Python (default ``$WEBUI_DIR/venv/bin/python``)
  WEBUI_KIND     a1111 (default; 1.7-1.10), classic (Forge Classic), reforge, forge or neo: launch arguments and
                 the stock state the tests expect (``forks.py``)
  WEBUI_ARGS     extra launch.py arguments (default: the kind's, CPU, skip environment preparation)
  WEBUI_PORT     port (default 7861, so a WebUI you are using on 7860 is left alone)
  WEBUI_DATA_DIR a folder for the WebUI's user data (its ``--data-dir``: extensions, settings, ``params.txt``,
                 outputs, cache; models still come from ``$WEBUI_DIR/models``). The repo is linked into
                 ``$WEBUI_DATA_DIR/extensions`` instead, so a checkout whose ``extensions/sd-embeddings`` is someone
                 else's link (or a real install) runs this repo without touching it
  REQS_FILE      read by the WebUI's own prepare step, which ``test_launch`` runs (the others skip it): on an offline
                 machine whose venv does not match ``requirements_versions.txt``, a requirements file it does match

The WebUI gets a fresh ``--embeddings-dir`` in a temporary folder, so your own embeddings are not touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import pickle
import shlex
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from factories import sdxl_vectors, vectors, write_a1111_pt, write_safetensors
from forks import current

REPO = Path(__file__).resolve().parents[2]
# The WebUI prints this after its app_started callbacks, where the extension mounts its routes; its own API
# (``/sdapi/v1/embeddings`` included) answers before them, so without this a test could meet a 404
STARTED = "Startup time:"
# 1.10 keeps the sampler's fields under the sampler script's own key
UI_DEFAULTS = {"txt2img/Width/value": 64, "txt2img/Height/value": 64, "txt2img/Sampling steps/value": 1,
               "customscript/sampler.py/txt2img/Sampling steps/value": 1,
               "customscript/sampler.py/txt2img/Sampling Steps/value": 1}  # Neo's label


def pytest_collection_modifyitems(config, items):
    if os.environ.get("WEBUI_DIR"):
        return
    skip = pytest.mark.skip(reason="set WEBUI_DIR to a WebUI checkout to run the integration tests")
    for item in items:
        if "integration" in item.nodeid:
            item.add_marker(skip)


def data_dir() -> Path:
    """Where the WebUI keeps user data: ``WEBUI_DATA_DIR`` or the checkout itself (the WebUI's default)."""
    return Path(os.environ.get("WEBUI_DATA_DIR") or os.environ["WEBUI_DIR"]).resolve()


def data_dir_args(root: Path) -> list[str]:
    """``--data-dir`` (and the checkout's models) when ``WEBUI_DATA_DIR`` is set; nothing otherwise."""
    if not os.environ.get("WEBUI_DATA_DIR"):
        return []
    (data_dir() / "extensions").mkdir(parents=True, exist_ok=True)
    return ["--data-dir", str(data_dir()), "--models-dir", str(root / "models")]


class WebUI:
    def __init__(self, url: str, embeddings: Path, log: Path) -> None:
        self.url, self.embeddings, self.log = url, embeddings, log
        self.data = data_dir()  # params.txt, outputs, config.json

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=60) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(self.url + path, data, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.loads(response.read())

    def txt2img(self, prompt: str, negative: str = "") -> str:
        body = {"prompt": prompt, "negative_prompt": negative, "steps": 1, "width": 64, "height": 64, "seed": 1}
        return json.loads(self.post("/sdapi/v1/txt2img", body)["info"])["infotexts"][0]


def seed_embeddings(folder: Path) -> None:
    torch.save({"string_to_param": {"*": vectors(2)}, "name": "legacyemb", "step": 3}, folder / "legacyemb.pt",
               _use_new_zipfile_serialization=False)
    write_a1111_pt(folder / "styles" / "zipemb.pt", vectors(3, seed=1))  # torch zip: the WebUI's loader refuses it
    write_safetensors(folder / "negative" / "negemb.safetensors", {"emb_params": vectors(4, seed=2)})
    write_safetensors(folder / "xl" / "xlemb.safetensors", sdxl_vectors(2))
    (folder / "evil.pt").write_bytes(pickle.dumps(_Evil()))  # written, never loaded here


def launch_args() -> list[str]:
    """``WEBUI_ARGS`` (or the defaults) as a list."""
    return shlex.split(os.environ.get("WEBUI_ARGS", current().args))


def _stop_with_pytest() -> None:
    """In the WebUI's process before it starts (Linux): SIGTERM it when this pytest process dies. A pytest killed
    (``timeout``, ``kill``) skips the ``finally`` below, and the orphaned WebUI kept its port, the extension link and
    the shared ``params.txt`` busy for other runs."""
    with contextlib.suppress(OSError, AttributeError):  # no prctl (not Linux): nothing to do
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class _Evil:
    def __reduce__(self):
        return os.system, ("echo this must never run",)


@contextlib.contextmanager
def running_webui(tmp_path_factory, ready: Callable[[WebUI], bool], *, port_offset: int = 0,
                  settings: dict | None = None, extensions: dict[str, Path] | None = None,
                  extra_args: list[str] | None = None, base_args: list[str] | None = None) -> Iterator[WebUI]:
    """Start the WebUI (the repo linked in as ``extensions/sd-embeddings``, plus ``extensions`` name -> folder
    links), wait until it has started and ``ready(server)``, stop it and remove the links it made. ``settings``
    seeds a fresh ``--ui-settings-file`` (the WebUI's ``config.json``, with what the fork needs to start unattended,
    ``Fork.settings``); without it the WebUI's own file is used. ``base_args`` replace ``launch_args()``."""
    root = Path(os.environ["WEBUI_DIR"]).resolve()
    python = os.environ.get("WEBUI_PYTHON") or str(root / "venv" / "bin" / "python")
    port = int(os.environ.get("WEBUI_PORT", "7861")) + port_offset
    made_links = []
    location_args = data_dir_args(root)
    for name, target in {"sd-embeddings": REPO, **(extensions or {})}.items():
        link = data_dir() / "extensions" / name
        if link.is_symlink() and not link.exists():  # a killed run's link whose temporary target is gone
            link.unlink()
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
            made_links.append(link)
    embeddings = tmp_path_factory.mktemp("webui-embeddings")
    seed_embeddings(embeddings)
    log = tmp_path_factory.mktemp("webui-log") / "webui.log"
    ui_config = log.parent / "ui-config.json"  # small, fast generations from the page too (CPU)
    ui_config.write_text(json.dumps(UI_DEFAULTS))
    args = [python, "launch.py", "--api", "--port", str(port), "--embeddings-dir", str(embeddings),
            "--ui-config-file", str(ui_config), *location_args,
            *(base_args if base_args is not None else launch_args()), *(extra_args or [])]
    if settings is not None:
        settings_file = log.parent / "config.json"
        settings_file.write_text(json.dumps({**current().settings, **settings}))
        args += ["--ui-settings-file", str(settings_file)]
    process = None
    try:
        with open(log, "wb") as out:
            process = subprocess.Popen(args, cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                       preexec_fn=_stop_with_pytest)
        server = WebUI(f"http://127.0.0.1:{port}", embeddings, log)
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("WebUI did not start:\n" + log.read_text(errors="replace")[-4000:])
            try:
                if STARTED in log.read_text(errors="replace") and ready(server):
                    break
            except OSError:
                pass
            time.sleep(2)
        yield server
    finally:
        if process is not None:
            with contextlib.suppress(ProcessLookupError):  # it may have exited on its own: still unlink below
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for link in made_links:
            link.unlink()


@pytest.fixture(scope="session")
def webui(tmp_path_factory):
    loads_late = not current().loads_model_at_start

    def ready(server: WebUI) -> bool:  # the summary line waits for the model
        return bool(server.get("/sdapi/v1/embeddings")["loaded"].get("negemb")) and \
            (loads_late or "Textual inversion:" in server.log.read_text(errors="replace"))

    with running_webui(tmp_path_factory, ready) as server:
        if loads_late:
            server.txt2img("a model to load")
        yield server


@pytest.fixture(scope="session")
def webui_args() -> list[str]:
    """The launch arguments every test uses (``launch_args``), for a test that changes them."""
    return launch_args()


@pytest.fixture(scope="session")
def launch_webui(tmp_path_factory) -> Callable[..., contextlib.AbstractContextManager[WebUI]]:
    """``running_webui`` for other modules' fixtures: ``with launch_webui(ready, ...) as server``."""
    return functools.partial(running_webui, tmp_path_factory)
