"""The generation cache under many processes at once: opening a new file, writing and reading
never raise "database is locked" and never lose a row (issue 14: two xdist workers opening a
fresh cache raised it at ``PRAGMA journal_mode=WAL``)."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

from medgate.core.types import Completion
from medgate.pipeline.cache import GenerationCache

PROCESSES, ROUNDS, ROWS = 8, 50, 3


def _hammer(index: int, folder: str, barrier: Any, results: Any) -> None:
    """One process: each round, wait for all the others, then open a brand-new cache file (where
    the switch to WAL races) and the shared one, write ROWS rows to each and read them back."""
    errors: list[str] = []
    for round_ in range(ROUNDS):
        barrier.wait(timeout=300)
        for name in (f"fresh-{round_}.sqlite", "shared.sqlite"):
            keys = [f"{index}-{round_}-{j}" for j in range(ROWS)]
            try:
                cache = GenerationCache(Path(folder) / name)
                cache.put_many(f"p{index}", [(k, Completion(f"answer {k}", 1, 1, "stop")) for k in keys])
                found = cache.get_many(keys)
                cache.count()
                cache.close()
            except Exception as exc:  # the point of the test: any error at all is counted
                errors.append(f"process {index}, round {round_}, {name}: {type(exc).__name__}: {exc}")
                continue
            if [found[k].text for k in keys if k in found] != [f"answer {k}" for k in keys]:
                errors.append(f"process {index}, round {round_}, {name}: read back {sorted(found)}")
    results.put(errors)


def rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])


def test_eight_processes_open_write_and_read_at_once_without_errors_or_lost_rows(tmp_path):
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as xdist workers are
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    procs = [context.Process(target=_hammer, args=(i, str(tmp_path), barrier, results)) for i in range(PROCESSES)]
    for proc in procs:
        proc.start()
    errors = [error for _ in procs for error in results.get(timeout=600)]
    for proc in procs:
        proc.join(timeout=60)
    assert errors == []
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES
    assert rows(tmp_path / "shared.sqlite") == PROCESSES * ROUNDS * ROWS
    assert [rows(tmp_path / f"fresh-{r}.sqlite") for r in range(ROUNDS)] == [PROCESSES * ROWS] * ROUNDS
