"""The shard board: where data-parallel workers say how their shards stand, in the shared
generation cache file (every worker already opens it; SQLite in WAL mode serialises writers).

A worker marks its shard running, advances it as prompts finish, and marks it done or failed
with the cause. The controller records a worker that went down, and reads the progress for its
bars. The worker that scores a model waits here until every shard of the model is done, and
errors with one line naming model, shard and worker when one failed, died or stopped advancing.
Rows are keyed by the xdist run id, so an earlier run's rows never count.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from medgate.core.errors import EngineError
from medgate.pipeline.cache import open_database
from medgate.pipeline.shards import Shard

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shards (
    run TEXT NOT NULL,
    model TEXT NOT NULL,
    shard INTEGER NOT NULL,
    shards INTEGER NOT NULL,
    worker TEXT NOT NULL,
    status TEXT NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    message TEXT NOT NULL,
    engine TEXT NOT NULL,
    started REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (run, model, shard)
);
CREATE TABLE IF NOT EXISTS downed_workers (
    run TEXT NOT NULL,
    worker TEXT NOT NULL,
    error TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (run, worker)
)
"""
_KEEP_SECONDS = 7 * 24 * 3600  # rows of older runs are dropped when a board opens


@dataclass(frozen=True)
class ShardRow:
    model: str
    shard: int
    shards: int
    worker: str
    status: str  # running, done or failed
    total: int  # prompts in the shard
    done: int  # prompts answered (from the cache or generated)
    tokens: int  # prompt and completion tokens generated so far
    message: str  # the cause, when failed
    engine: dict[str, str]  # the engine's description, when one was loaded
    started: float
    updated: float


@dataclass(frozen=True)
class ModelProgress:
    """A model's generation across its workers, for the controller's bar."""

    done: int
    total: int
    tokens: int
    started: float
    updated: float
    workers: int  # shards reported so far
    finished: bool  # every shard of the model reported done


class ShardBoard:
    def __init__(self, path: Path, run: str, clock: Callable[[], float] = time.time) -> None:
        self.run = run
        self.clock = clock
        self._db = open_database(path, _SCHEMA)
        old = clock() - _KEEP_SECONDS
        self._write("DELETE FROM shards WHERE updated < ?", old)
        self._write("DELETE FROM downed_workers WHERE at < ?", old)

    # -- a generating worker ---------------------------------------------------------------------

    def start(self, shard: Shard, total: int) -> None:
        now = self.clock()
        self._write("INSERT OR REPLACE INTO shards VALUES (?, ?, ?, ?, ?, 'running', ?, 0, 0, '', '{}', ?, ?)",
                    self.run, shard.model, shard.index, shard.count, shard.worker, total, now, now)

    def advance(self, shard: Shard, done: int, tokens: int) -> None:
        self._update(shard, "done = ?, tokens = ?", done, tokens)

    def finish(self, shard: Shard, engine: dict[str, str]) -> None:
        self._update(shard, "status = 'done', done = total, engine = ?", json.dumps(engine, sort_keys=True))

    def fail(self, shard: Shard, message: str) -> None:
        self._update(shard, "status = 'failed', message = ?", message)

    # -- the controller --------------------------------------------------------------------------

    def worker_down(self, worker: str, error: str) -> None:
        self._write("INSERT OR REPLACE INTO downed_workers VALUES (?, ?, ?, ?)", self.run, worker, error, self.clock())

    def progress(self) -> dict[str, ModelProgress]:
        out = {}
        for model, done, total, tokens, started, updated, workers, expected, unfinished in self._db.execute(
            "SELECT model, SUM(done), SUM(total), SUM(tokens), MIN(started), MAX(updated), COUNT(*), MAX(shards), "
            "SUM(status != 'done') FROM shards WHERE run = ? GROUP BY model ORDER BY model", (self.run,)
        ):
            out[model] = ModelProgress(done=done, total=total, tokens=tokens, started=started, updated=updated,
                                       workers=workers, finished=workers == expected and unfinished == 0)
        return out

    # -- the scoring worker ----------------------------------------------------------------------

    def rows(self, model: str) -> dict[int, ShardRow]:
        cursor = self._db.execute("SELECT * FROM shards WHERE run = ? AND model = ?", (self.run, model))
        return {row[2]: ShardRow(*row[1:10], json.loads(row[10]), *row[11:]) for row in cursor}

    def wait(self, shards: Sequence[Shard], timeout: float, *, poll: float = 0.5,
             sleep: Callable[[float], None] = time.sleep) -> list[ShardRow]:
        """Block until every shard is done; EngineError when one failed, its worker went down, or
        it has not advanced (or not started) for ``timeout`` seconds."""
        waiting_since = self.clock()
        while True:
            if not shards:
                return []
            rows = self.rows(shards[0].model)
            downed = dict(self._db.execute("SELECT worker, error FROM downed_workers WHERE run = ?", (self.run,)).fetchall())
            pending = [s for s in shards if s.index not in rows or rows[s.index].status != "done"]
            if not pending:
                return [rows[s.index] for s in shards]
            for shard in pending:
                self._check(shard, rows.get(shard.index), downed, waiting_since, timeout)
            sleep(poll)

    def _check(self, shard: Shard, row: ShardRow | None, downed: dict[str, str], waiting_since: float,
               timeout: float) -> None:
        where = f"model {shard.model}: {shard.label} (worker {shard.worker})"
        kept = "finished shards stay in the generation cache: a re-run generates only what is missing"
        if row is not None and row.status == "failed":
            raise EngineError(f"{where} failed: {row.message}")
        if shard.worker in downed:
            raise EngineError(f"{where}: the worker died before its shard was done ({downed[shard.worker]}); {kept}")
        quiet = self.clock() - (row.updated if row is not None else waiting_since)
        if quiet > timeout:
            state = "never started" if row is None else f"stopped at {row.done} of {row.total} prompts"
            raise EngineError(f"{where} did not arrive: {state}, nothing new for {quiet:.0f} s "
                              f"(--shard-timeout {timeout:g}); {kept}")

    # -- plumbing --------------------------------------------------------------------------------

    def _update(self, shard: Shard, assignments: str, *values: Any) -> None:
        self._write(f"UPDATE shards SET {assignments}, updated = ? WHERE run = ? AND model = ? AND shard = ?",
                    *values, self.clock(), self.run, shard.model, shard.index)

    def _write(self, sql: str, *values: Any) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(sql, values)

    def close(self) -> None:
        self._db.close()
