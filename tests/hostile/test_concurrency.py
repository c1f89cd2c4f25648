"""Refreshes, file rewrites/adds/deletes and prompt encodes from several threads at once, for a bounded time.

Every version of the rewritten embedding is self-describing: ``rows`` vectors, every value ``rows + 0.5``. An
encode that places ``n`` rows of an entry must read back exactly that version (``n`` rows of ``n + 0.5``): old or
new, never the rows of one and the values of the other. No thread may raise.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from factories import write_a1111_pt, write_safetensors
from hostile_kit import TALLY

from sd_embeddings.encode.encoding import encode_report
from sd_embeddings.errors import ChangedFileError
from sd_embeddings.library import Library
from sd_embeddings.prompt.chunks import indexes_for, tokenize_prompt
from sd_embeddings.prompt.tokenizer import bundled
from sd_embeddings.records import Family, Status

SECONDS = float(os.environ.get("CONCURRENCY_SECONDS", "3"))
WIDTH = 768
PROMPT = "flip, stable, churn0, churn1, (flip:1.2), churn2"


def version(rows: int) -> torch.Tensor:
    return torch.full((rows, WIDTH), rows + 0.5)


def atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write beside, then rename over: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def check_version(data: torch.Tensor, rows: int) -> None:
    assert data.shape == (rows, WIDTH), f"placed {rows} rows, read {tuple(data.shape)}"
    assert torch.all(data == rows + 0.5), f"placed {rows} rows, read values {float(data.flatten()[0])}"


def hammer(workers: dict[str, Callable[[], None]], seconds: float = SECONDS) -> dict[str, int]:
    """Run each worker in a loop on its own thread until time is up; re-raise the first failure."""
    stop = threading.Event()
    errors: list[BaseException] = []
    rounds = dict.fromkeys(workers, 0)

    def loop(name: str, work: Callable[[], None]) -> None:
        try:
            while not stop.is_set():
                work()
                rounds[name] += 1
                time.sleep(0.002)  # let the others take the library's lock (an RLock is not fair)
        except BaseException as e:  # reported below, with the others stopped
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=loop, args=item, daemon=True) for item in workers.items()]
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(30)
    TALLY["inputs"] += sum(rounds.values())
    if errors:
        TALLY["crashes"] += 1
        raise errors[0]
    assert all(rounds.values()), rounds  # every worker got to run
    return rounds


def test_encodes_see_old_or_new_never_half(tmp_path: Path) -> None:
    root = tmp_path / "embeddings"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    flip = root / "a" / "flip.pt"
    write_a1111_pt(flip, version(1))
    write_safetensors(root / "stable.safetensors", {"emb_params": version(2)})
    library = Library([root], family=Family.SD1, background_hashing=False)
    library.refresh()
    tok = bundled()
    state = {"generation": 0, "retries": 0}
    encoded = {"encode1": 0, "encode2": 0}
    # Changes are paced by encodes, not by the clock: between two rewrites every encoder succeeds once, so a
    # loaded machine slows both sides alike and no encoder can be starved by a writer that outruns it.
    progress = threading.Condition()

    def rewrite() -> None:
        with progress:
            seen = dict(encoded)
            if not progress.wait_for(lambda: all(encoded[n] > seen[n] for n in seen), timeout=5):
                return
        state["generation"] += 1
        g = state["generation"]
        atomic(flip, lambda p: write_a1111_pt(p, version(1 + g % 3)))
        churn = root / "b" / f"churn{g % 3}.safetensors"
        if churn.exists():
            churn.unlink()
        else:
            atomic(churn, lambda p: write_safetensors(p, {"emb_params": version(3)}))

    def refresh() -> None:
        library.refresh()

    def encoder(name: str) -> Callable[[], None]:
        return lambda: encode(name)

    def encode(name: str) -> None:
        """Match, then read the vectors, as conditioning does; a file replaced in between is refused, never
        mixed: the caller rescans and matches again (counted), and must then succeed."""
        for _attempt in range(20):
            tokens = tokenize_prompt(PROMPT, tok, indexes_for(library, tok, Family.SD1))
            keywords = [p.entry.keyword for p in tokens.placements]
            assert "stable" in keywords and "flip" in keywords, keywords
            try:
                for p in tokens.placements:
                    if p.entry.keyword in ("flip", "stable"):  # never deleted: their vectors must be readable
                        check_version(library.load(p.entry).vec, p.vectors)
                with progress:
                    encoded[name] += 1
                    progress.notify_all()
                return
            except ChangedFileError:
                state["retries"] += 1
                library.refresh()
        raise AssertionError("20 encodes in a row met a changed file")

    def report() -> None:
        result = encode_report(library, PROMPT, "churn1, stable", family=Family.SD1, conditioning=False)
        for used in result["embeddings"]:
            assert used["vectors"] in (1, 2, 3), used
        names = [u["keyword"] for u in result["embeddings"]]
        assert names.count("flip") == 2 and names.count("stable") == 2, names

    def verify() -> None:  # what the background pass does: hash and decode every entry once
        for entry in library.entries:
            library.verify(entry)

    rounds = hammer({"rewrite": rewrite, "refresh": refresh, "encode1": encoder("encode1"),
                     "encode2": encoder("encode2"), "report": report, "verify": verify})
    assert state["generation"] > 3 and rounds["encode1"] > 3, (state, rounds)
    print(f"\nconcurrency: {rounds}, retries after a changed file: {state['retries']}")
    library.refresh()
    flip_entry = next(e for e in library.entries if e.keyword == "flip")
    assert flip_entry.status is Status.LOADED
    check_version(library.load(flip_entry).vec, 1 + state["generation"] % 3)
    assert all(e.status is Status.LOADED for e in library.entries), [(e.relpath, e.reason) for e in library.entries]


def test_metadata_writers_and_readers_never_see_half_a_file(tmp_path: Path) -> None:
    """Two threads write ``x.json`` through the library's atomic writer while one reads it raw and one rescans:
    every read is a whole JSON document written by one of the writers, and no temporary file is left."""
    root = tmp_path / "embeddings"
    write_safetensors(root / "x.safetensors", {"emb_params": version(1)})
    library = Library([root], background_hashing=False)
    library.refresh()
    entry = library.get("x")
    notes = {name: name * 20_000 for name in ("a", "b")}  # 20 KB each: a torn write would show

    def writer(name: str) -> Callable[[], None]:
        return lambda: library.save_user_metadata(entry, {"notes": notes[name]})

    def reader() -> None:
        path = root / "x.json"
        if path.exists():
            assert library.user_metadata(library.get("x") or entry).get("notes") in (*notes.values(), None)
            assert json.loads(path.read_text(encoding="utf-8"))["notes"] in notes.values()

    hammer({"write a": writer("a"), "write b": writer("b"), "read": reader, "refresh": library.refresh})
    assert not [name for name in os.listdir(root) if name.endswith(".tmp")]
