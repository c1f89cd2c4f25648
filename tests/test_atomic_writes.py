"""The one atomic writer: every file we write (x.json, the scan cache, converted and sample files, previews) is
fsync'd before it replaces the old one, keeps an existing file's permissions, follows the umask when new, and a
failure says what happened (read-only folder, disk full, name too long). Stale temporary files are swept."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import vectors, write_a1111_pt

from sd_embeddings.cli.convert import convert_one
from sd_embeddings.cli.samples import write_samples
from sd_embeddings.errors import WriteError
from sd_embeddings.library import Library, atomic
from sd_embeddings.library.hashing import HashCache


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the files fsync'd (a spy: the real ``os.fsync`` still runs)."""
    seen: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        with contextlib.suppress(OSError):
            seen.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return seen


def test_metadata_keeps_its_mode_and_new_files_follow_the_umask(tmp_path: Path) -> None:
    write_a1111_pt(tmp_path / "kept.pt", vectors(1))
    write_a1111_pt(tmp_path / "fresh.pt", vectors(1))
    (tmp_path / "kept.json").write_text("{}")
    os.chmod(tmp_path / "kept.json", 0o644)
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    with umask(0o027):
        library.save_user_metadata(library.get("kept"), {"notes": "x"})
        library.save_user_metadata(library.get("fresh"), {"notes": "y"})
    assert mode(tmp_path / "kept.json") == 0o644
    assert mode(tmp_path / "fresh.json") == 0o640
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_every_writer_goes_through_the_atomic_writer(tmp_path: Path, synced: list[str]) -> None:
    """Converted, sample, preview, metadata and cache files: each fsync'd as a temporary file, umask mode."""
    source = write_a1111_pt(tmp_path / "in" / "emb.pt", vectors(2))
    with umask(0o027):
        converted = convert_one(str(source), str(tmp_path / "out"), "safetensors", force=False)
        samples = write_samples(tmp_path / "samples")
        library = Library([tmp_path / "in"], background_hashing=False)
        library.refresh()
        preview = library.save_preview(library.get("emb"), b"\x89PNG\r\n\x1a\nnot checked here")
        cache = HashCache(tmp_path / "cache" / "hashes.json")
        cache.put(str(source), (1, 1, 1, 1), "0" * 64)
        cache.save()
    written = [Path(converted), *samples, Path(preview), tmp_path / "cache" / "hashes.json"]
    assert {path.name: mode(path) for path in written} == {path.name: 0o640 for path in written}
    temporaries = [name for name in synced if name.startswith(".sdemb-") and name.endswith(".tmp")]
    assert len(temporaries) == len(written)


def test_write_errors_say_what_happened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENAMETOOLONG is real (a 251-character stem); a read-only folder is real when not root; a full disk cannot
    be made here, so ENOSPC is injected into the real ``os.fsync`` call (a fake, said so)."""
    write_a1111_pt(tmp_path / ("n" * 251 + ".pt"), vectors(1))
    write_a1111_pt(tmp_path / "emb.pt", vectors(1))
    library = Library([tmp_path], background_hashing=False)
    library.refresh()
    with pytest.raises(WriteError, match="name too long") as long_name:
        library.save_user_metadata(library.get("n" * 251), {"notes": "x"})
    assert long_name.value.kind == "name-too-long"

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", full)
        with pytest.raises(WriteError, match="disk full") as disk:
            library.save_user_metadata(library.get("emb"), {"notes": "x"})
    assert disk.value.kind == "disk-full" and not (tmp_path / "emb.json").exists()
    if os.geteuid() != 0:
        os.chmod(tmp_path, 0o555)
    else:  # root writes anywhere: the refusal a read-only mount gives is injected instead
        monkeypatch.setattr(atomic.tempfile, "mkstemp", lambda **kw: (_ for _ in ()).throw(
            OSError(errno.EROFS, "Read-only file system")))
    try:
        with pytest.raises(WriteError, match="folder is read-only") as read_only:
            library.save_user_metadata(library.get("emb"), {"notes": "x"})
    finally:
        os.chmod(tmp_path, 0o755)
    assert read_only.value.kind == "read-only"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_stale_temporary_files_are_swept_at_start_only_ours_and_only_old(tmp_path: Path) -> None:
    write_a1111_pt(tmp_path / "sub" / "emb.pt", vectors(1))
    old, fresh = tmp_path / "sub" / ".sdemb-abc_1234.tmp", tmp_path / ".sdemb-zzzz9999.tmp"
    user, link = tmp_path / ".sdemb-mine.tmp", tmp_path / "sub" / ".sdemb-link0000.tmp"
    for path in (old, fresh, user):
        path.write_bytes(b"half a file")
    link.symlink_to(tmp_path / "sub" / "emb.pt")
    past = time.time() - atomic.STALE_AFTER_S - 60
    for path in (old, user):
        os.utime(path, (past, past))
    os.utime(link, (past, past), follow_symlinks=False)
    Library([tmp_path], background_hashing=False).refresh()
    assert not old.exists()
    assert fresh.exists() and user.exists() and link.is_symlink()
