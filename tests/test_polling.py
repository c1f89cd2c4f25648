"""Polling where inotify cannot see (network folders): a bounded number of stats per check, folders first.

Real files in tmp_path; ``stat`` is wrapped to count calls (the work), never timed. The mount table is a text in
``/proc/self/mountinfo``'s format, written here, since no NFS mount exists on a test machine."""

from __future__ import annotations

import math
import os

import pytest
from factories import touch_mtime, vectors, write_safetensors

from sd_embeddings.library import Library, polling
from sd_embeddings.library.polling import BudgetedPoll
from sd_embeddings.library.watcher import ChangeWatcher


@pytest.fixture
def library(tmp_path):
    for i in range(30):
        write_safetensors(tmp_path / "emb" / f"f{i % 6}" / f"e{i}.safetensors", {"emb_params": vectors(1, seed=i)})
    lib = Library([tmp_path / "emb"], background_hashing=False)
    lib.refresh()
    return lib


def counting_poll(budget: int) -> tuple[BudgetedPoll, list[str]]:
    calls: list[str] = []

    def stat(path: str) -> os.stat_result:
        calls.append(path)
        return os.stat(path)

    return BudgetedPoll(budget=budget, seconds=3600, stat=stat), calls


def test_each_check_stats_at_most_its_budget_half_on_folders(library):
    poll, calls = counting_poll(budget=6)
    folders, files = list(library.folder_stamps()), [e.path for e in library.entries]
    checks = math.ceil(len(files) / 3)
    for _ in range(checks):
        before = len(calls)
        assert poll.check(library) is False
        assert calls[before:before + 3] == [folders[i % len(folders)] for i in range(before // 2, before // 2 + 3)]
        assert len(calls) - before == 6
    assert set(calls) == {*folders, *files}  # a cycle of files went by, the folders many times


def test_a_new_file_is_found_through_its_folders_mtime_within_the_folder_checks(library, tmp_path):
    poll, _ = counting_poll(budget=4)
    poll.check(library)
    write_safetensors(tmp_path / "emb" / "f4" / "dropped.safetensors", {"emb_params": vectors(1)})
    folders = len(library.folder_stamps())
    assert any(poll.check(library) for _ in range(math.ceil(folders / 2)))


def test_a_file_rewritten_in_place_is_found_within_one_cycle_of_files(library, tmp_path):
    poll, _ = counting_poll(budget=4)
    target = tmp_path / "emb" / "f5" / "e29.safetensors"
    write_safetensors(target, {"emb_params": vectors(2, seed=99)})
    touch_mtime(target)
    for folder, stamp in library.folder_stamps().items():  # the folder's mtime is put back: only the file tells
        os.utime(folder, ns=(stamp, stamp))
    assert any(poll.check(library) for _ in range(math.ceil(len(library.entries) / 2)))


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
40 27 0:45 / /mnt/share rw,relatime - nfs4 server:/export rw,vers=4.2
41 27 0:46 / /mnt/share/local\\040disk rw,relatime - ext4 /dev/sdb1 rw
42 27 0:47 / /mnt/smb rw,relatime - cifs //nas/ti rw
"""


def test_network_folders_from_the_mount_table():
    found = polling.network_folders(["/mnt/share/emb", "/mnt/share/local disk/emb", "/home/u/emb", "/mnt/smb",
                                     "/mnt/shared"], MOUNTINFO)
    assert found == ["/mnt/share/emb", "/mnt/smb"]


def test_a_watcher_over_a_network_folder_is_never_complete(library, monkeypatch):
    monkeypatch.setattr(polling, "network_folders", lambda folders, mountinfo=None: list(folders))
    watcher = ChangeWatcher(interval=3600)
    try:
        watcher.watch(library)
        assert watcher.remote and not watcher.complete
    finally:
        watcher.stop()
