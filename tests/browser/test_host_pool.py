"""``HostPool``: a shared host is handed out again only while its folder, library version, family and process are
as they were when it started; any change gets the next test a new host over a newly built folder.

Stand-in (the only one): the host. A real one takes seconds to start and the browser tests run the pool with
real hosts all the time; here a small object with the three things the pool reads (``folder``, ``process.poll()``,
``api("/version")``) lets each kind of change be made on purpose. The folders and files are real.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from host_pool import LIVE_LIMIT, HostPool


@dataclass
class Process:
    exitcode: int | None = None

    def poll(self) -> int | None:
        return self.exitcode


@dataclass
class StandIn:
    folder: Path
    family: str
    extra: tuple[str, ...]
    version: int = 1
    process: Process = field(default_factory=Process)
    stopped: bool = False

    def api(self, path: str) -> tuple[int, bytes]:
        assert path == "/version"
        return 200, json.dumps({"version": self.version, "family": self.family}).encode()


def build(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "cat.pt").write_bytes(b"cat bytes")
    (folder / "sub" / "dog.safetensors").write_bytes(b"dog bytes")
    return folder


def build_other(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def pool(tmp_path: Path) -> HostPool:
    def stop(host: StandIn) -> None:
        host.stopped = True

    return HostPool(tmp_path, lambda folder, log, family, extra: StandIn(folder, family, extra), stop)


def test_an_unchanged_host_is_shared(pool: HostPool) -> None:
    first = pool.get(build)
    assert pool.get(build) is first and not first.stopped
    assert pool.get(build, "sdxl") is not first  # another family is another host
    other = pool.get(build, "sd1", ("--explicit-only",))
    assert other is not first and other.extra == ("--explicit-only",)


def change_bytes_keep_size_and_times(path: Path) -> None:
    info = path.stat()
    path.write_bytes(b"cat BYTES")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


@pytest.mark.parametrize("change", [
    lambda host: (host.folder / "new.pt").write_bytes(b"x"),
    lambda host: (host.folder / "cat.pt").unlink(),
    lambda host: change_bytes_keep_size_and_times(host.folder / "cat.pt"),
    lambda host: (host.folder / "sub" / "cat.json").write_text("{}"),
    lambda host: (host.folder / "linked.png").symlink_to(host.folder / "cat.pt"),
    lambda host: setattr(host, "version", 2),
    lambda host: setattr(host, "family", "sdxl"),
    lambda host: setattr(host.process, "exitcode", 1),
], ids=["file-added", "file-removed", "same-size-and-time", "sidecar-in-sub-folder", "link", "version", "family",
        "exited"])
def test_any_change_gets_a_new_host_over_a_new_folder(pool: HostPool, change) -> None:
    first = pool.get(build)
    change(first)
    second = pool.get(build)
    assert second is not first and first.stopped
    assert second.folder != first.folder and (second.folder / "cat.pt").read_bytes() == b"cat bytes"
    assert sorted(p.name for p in second.folder.rglob("*")) == ["cat.pt", "dog.safetensors", "sub"]


def test_the_least_recently_used_host_is_stopped_past_the_limit(pool: HostPool) -> None:
    hosts = [pool.get(build, family) for family in ("sd1", "sd2", "sdxl")[:LIVE_LIMIT]]
    pool.get(build, "sd1")  # used last: kept
    extra = pool.get(build_other)
    assert hosts[0].stopped is False and all(host.stopped for host in hosts[1:]) and not extra.stopped
    pool.close()
    assert hosts[0].stopped and extra.stopped
