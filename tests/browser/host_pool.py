"""Standalone hosts shared between browser tests, each handed out only while it is exactly as it started.

A host takes seconds of CPU to start (python, gradio, the app); most browser tests only read what it serves and
change nothing but their own page. ``HostPool.get(build, family, extra)`` keeps one host per ``build``, family and
``extra`` ``serve`` arguments: the first call writes a folder with ``build(folder)`` and starts a host over it;
later calls hand the same host out again if it is still pristine: the process runs, every file and folder under
its folder has the bytes, size and times it had when the host was up, and the host reports the same library
version and model family (a test that wrote a file, saved metadata, refreshed or switched the family changed one
of these). Otherwise the host is stopped and a new one is started over a freshly built folder, so a test that
changes things costs a start and never leaks into the next test. The check runs when a host is handed out, after
the previous test closed its pages."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Builder = Callable[[Path], Path]
LIVE_LIMIT = 2
"""Shared hosts kept running at once (least recently used stopped first): memory on a small CI machine."""


def folder_state(folder: Path) -> list[tuple]:
    """Every entry under ``folder`` (itself included): relative path, mode, size, mtime, and the bytes' hash for
    files or the target for links. Links are not followed."""
    rows = []
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        for name in [".", *dirs, *sorted(files)]:
            path = os.path.normpath(os.path.join(parent, name))
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                extra = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            else:
                extra = ""
            rows.append((os.path.relpath(path, folder), info.st_mode, info.st_size, info.st_mtime_ns, extra))
    return rows


@dataclass
class _Shared:
    host: Any
    pristine: tuple


class HostPool:
    """``get(build, family, extra) -> Host``; ``close()`` stops every host. ``start(folder, log, family, extra)`` and
    ``stop(host)`` are the browser conftest's; a host needs ``folder``, ``process`` and ``api(path)``."""

    def __init__(self, root: Path, start: Callable[..., Any], stop: Callable[[Any], None]) -> None:
        self.root, self.start, self.stop = root, start, stop
        self.live: OrderedDict[tuple[Builder, str, tuple[str, ...]], _Shared] = OrderedDict()
        self.started = 0

    def get(self, build: Builder, family: str = "sd1", extra: tuple[str, ...] = ()) -> Any:
        key = (build, family, tuple(extra))
        shared = self.live.pop(key, None)
        if shared is not None and self.state(shared.host) != shared.pristine:
            self.stop(shared.host)
            shared = None
        if shared is None:
            shared = self._start(*key)
        self.live[key] = shared
        while len(self.live) > LIVE_LIMIT:
            self.stop(self.live.popitem(last=False)[1].host)
        return shared.host

    def _start(self, build: Builder, family: str, extra: tuple[str, ...]) -> _Shared:
        self.started += 1
        place = self.root / f"host-{self.started}"
        place.mkdir()
        host = self.start(build(place / "embeddings"), place / "host.log", family, extra)
        return _Shared(host, self.state(host))

    def state(self, host: Any) -> tuple:
        """What must not change between tests; a stopped process or an unreadable answer never matches."""
        if host.process.poll() is not None:
            return ("exited",)
        try:
            code, body = host.api("/version")
        except OSError as e:
            return ("unreachable", str(e))
        return code, json.loads(body) if code == 200 else body, folder_state(host.folder)

    def close(self) -> None:
        while self.live:
            self.stop(self.live.popitem()[1].host)
