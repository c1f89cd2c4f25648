"""Browser tests: Debian's Chromium driven by Playwright, against the standalone host (``host_factory``: one of
its own per test; ``shared_host``: one shared while it stays unchanged, see ``host_pool.py``) or the host-less page
(``static_tab``). One Chromium per session, a fresh context (cookies, storage) per page."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import host_process
import pytest
from host_pool import Builder, HostPool

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install -y chromium, or `make chromium`)")
    for item in items:
        if "browser" in item.keywords and not os.path.exists(CHROMIUM):
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Host:
    folder: Path
    url: str
    process: host_process.Forked
    log: Path

    def api(self, path: str, data: bytes | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + "sd-embeddings/v1" + path, data=data,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


HOST_START_CAP_S = 900


def start_host(folder: Path, log: Path, family: str = "sd1", extra: tuple[str, ...] = ()) -> Host:
    """``extra``: more ``serve`` arguments (``--model PATH``)."""
    port = free_port()
    process = host_process.launch(["serve", str(folder), "--port", str(port), "--family", family, *extra],
                                  {**os.environ, "SD_EMBEDDINGS_ENCODER_LAYERS": "1"}, str(ROOT), str(log))
    host = Host(folder, f"http://127.0.0.1:{port}/", process, log)
    # Wait for the host as long as it is alive and starting: a loaded 2-core machine can take minutes to import
    # torch and gradio. The cap only stops a host that hangs for ever; it is not a speed requirement.
    deadline = time.monotonic() + HOST_START_CAP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"host exited early:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            if host.api("/version")[0] == 200:
                return host
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"host did not start:\n{log.read_text()}")


def stop_host(host: Host) -> None:
    host.process.terminate()
    try:
        host.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        host.process.kill()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@dataclass
class Watch:
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    trail: list[str] = field(default_factory=list)
    """Console lines, failed requests and answers of 400 and up: printed when the test fails (a rare failure on a
    loaded CI machine is then explained by its own report)."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.failed_call = report.failed
    return report


def explain_failure(request: pytest.FixtureRequest, pages: list[tuple[object, Watch, Host]]) -> None:
    """After a failed test: each page's screenshot under test-artifacts/failures/, its trail and its host's log."""
    if not getattr(request.node, "failed_call", False):
        return
    folder = ARTIFACTS / "failures"
    folder.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.name)[:120]
    for i, (page, watch, host) in enumerate(pages):
        with contextlib.suppress(Exception):  # a page that is gone explains nothing more
            page.screenshot(path=str(folder / f"{stem}-{i}.png"))
        print(f"--- page {i} on {host.url}: errors {watch.errors}, dialogs {watch.dialogs}")
        print("\n".join(watch.trail[-60:]))
        with contextlib.suppress(OSError):
            print(f"--- host log {host.log}:\n{host.log.read_text()[-4000:]}")


def track_queue_streams(page) -> set[object]:
    """The page's open gradio event streams (``/queue/data``): the page load's events run on one."""
    streams: set[object] = set()
    page.on("request", lambda r: "/queue/data" in r.url and streams.add(r))
    page.on("requestfinished", lambda r: streams.discard(r))
    page.on("requestfailed", lambda r: streams.discard(r))
    return streams


def settle(page, streams: set[object], cap_s: float = 60.0) -> None:
    """Wait until the page load's gradio events are done (their stream has closed), so a test acts on a page that
    has finished loading, as a user does: an event sent while that stream closes is the suspected (not proven)
    way an Encode click once got no answer."""
    deadline = time.monotonic() + cap_s
    while streams and time.monotonic() < deadline:
        page.wait_for_timeout(50)


@pytest.fixture
def open_page(browser, tmp_path: Path, request: pytest.FixtureRequest):
    """``open_page(host, dark=False) -> (page, watch)``: a page on the host's tab, cards rendered by the script."""
    contexts, pages = [], []

    def opener(host: Host, dark: bool = False, width: int = 1280):
        context = browser.new_context(viewport={"width": width, "height": 900},
                                      color_scheme="dark" if dark else "light")
        contexts.append(context)
        page = context.new_page()
        watch = Watch()

        def on_dialog(dialog) -> None:
            watch.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: watch.errors.append(str(error)))
        page.on("console", lambda message: watch.trail.append(f"console {message.type}: {message.text[:300]}"))
        page.on("requestfailed", lambda r: watch.trail.append(f"failed {r.method} {r.url[:200]}: {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and watch.trail.append(f"{r.status} {r.request.method} "
                                                                            f"{r.url[:200]}"))
        pages.append((page, watch, host))
        streams = track_queue_streams(page)
        page.goto(host.url + ("?__theme=dark" if dark else ""))
        page.wait_for_selector(".sdemb-pane[data-sdemb-init]", timeout=60_000)
        # Drawn into the pane that is in the page now: gradio may replace it after the first draw, and the script
        # draws the new one a frame later (a test reading the tree in between would see an empty one).
        page.wait_for_function("() => { const p = document.querySelector('.sdemb-pane');"
                               " const s = p && window.sdEmbeddings.states.get(p);"
                               " return !!(s && s.doc && s.tree === p.querySelector('.sdemb-tree')"
                               " && s.cards === p.querySelector('.sdemb-cards')); }")
        settle(page, streams)
        return page, watch

    yield opener
    explain_failure(request, pages)
    for context in contexts:
        context.close()


@pytest.fixture
def host_factory(tmp_path: Path):
    """``host_factory(folder, family, extra) -> Host``: the standalone host over ``folder`` (``extra``: more
    ``serve`` options), stopped after the test."""
    hosts: list[Host] = []

    def factory(folder: Path, family: str = "sd1", extra: tuple[str, ...] = ()) -> Host:
        host = start_host(folder, tmp_path / f"host-{len(hosts)}.log", family, extra)
        hosts.append(host)
        return host

    yield factory
    for host in hosts:
        stop_host(host)


@pytest.fixture
def static_tab(browser):
    """``static_tab(library, hold_cards=False, **shell_options) -> StaticTab`` (see ``static_tab.py``)."""
    from static_tab import open_static

    contexts = []

    def opener(library, hold_cards: bool = False, **options):
        contexts.append(browser.new_context(viewport={"width": 1280, "height": 900}))
        return open_static(contexts[-1], library, hold_cards, **options)

    yield opener
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def host_pool(tmp_path_factory) -> Iterator[HostPool]:
    pool = HostPool(tmp_path_factory.mktemp("shared-hosts"), start_host, stop_host)
    yield pool
    pool.close()


@pytest.fixture
def shared_host(host_pool: HostPool):
    """``shared_host(build, family="sd1", extra=()) -> Host``: a host over a folder written by ``build(folder) ->
    folder`` (a module-level function: it is the key), shared with other tests asking for the same ``build``, family
    and ``extra`` ``serve`` arguments for as long as neither its files nor its library version nor its family
    change. A test may change them (write files, save metadata, switch the family): the next test then gets a new
    host over a newly built folder."""

    def get(build: Builder, family: str = "sd1", extra: tuple[str, ...] = ()) -> Host:
        return host_pool.get(build, family, extra)

    return get
