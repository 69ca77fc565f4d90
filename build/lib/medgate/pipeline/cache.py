"""The generation cache: one row per generated answer, keyed by everything that decides it.

Key: model fingerprint, engine and its version, the settings that change outputs (dtype,
context length), the rendered chat, the chat template and the decoding settings. SQLite in WAL
mode makes it safe with several xdist processes, and each batch is committed as soon as it is
generated, so a killed run keeps what it finished.

The same file keeps the scores of model-based metrics (BERTScore) per (answer, reference) pair,
keyed by the encoder's files and settings: a re-run or --rejudge then loads no model at all.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator, Sequence

from filelock import FileLock

from medgate.core.errors import CacheError, ConfigError
from medgate.core.types import Chat, Completion, GenParams
from medgate.models.engines import backend_of
from medgate.models.spec import ModelSpec

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    key TEXT PRIMARY KEY,
    scores TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS run_items (
    run TEXT NOT NULL,
    key TEXT NOT NULL,
    error TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (run, key)
)
"""
# run_items: what a data-parallel run generated, so the worker that scores a model knows which
# answers are this run's (not "cached") and gets the items that failed (never stored as answers).


def generation_key(*, fingerprint: str, spec: ModelSpec, chat: Chat, params: GenParams,
                   template: str | None = None) -> str:
    """The cache key of one answer. ``template`` is the text of the model's chat template file."""
    material: list[Any] = [
        fingerprint, backend_of(spec).engine_id(spec), spec.dtype, spec.max_model_len, spec.seed,
        [dict(m) for m in chat], template, params.describe(),
    ]
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode("utf-8")).hexdigest()


def generation_identity(*, fingerprint: str, spec: ModelSpec, template: str | None = None) -> str:
    """Everything of a generation key but the prompt: two models of equal identity are the same
    model (weights, engine, settings, template), whatever their names."""
    material = [fingerprint, backend_of(spec).engine_id(spec), spec.dtype, spec.max_model_len, spec.seed, template]
    return "sha256:" + hashlib.sha256(json.dumps(material, sort_keys=True).encode("utf-8")).hexdigest()[:20]


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """A connection to the shared SQLite file in WAL mode, with ``schema`` created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=120, isolation_level=None, check_same_thread=False)
    # Switching to WAL does not wait on SQLite's busy timeout: two processes opening a new
    # file at once could get "database is locked". The switch (persistent in the file) and the
    # schema are done under a file lock, by whichever process comes first.
    with FileLock(str(path) + ".lock", timeout=300):
        if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class GenerationCache:
    """The SQLite file: generations, and model-based scores per pair (a ScoreStore)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._guard():
            self._db = open_database(path, _SCHEMA)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """A damaged or foreign file is one clear error naming it, not a traceback in every test."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"{self.path}: the generation cache cannot be used ({exc}); delete the file (it holds "
                             "only cached answers) or run with --no-cache") from None

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        rows = self._rows("generations", "text, prompt_tokens, completion_tokens, finish_reason", keys)
        return {key: Completion(text=text, prompt_tokens=pt, completion_tokens=ct, finish_reason=fr)
                for key, text, pt, ct, fr in rows}

    def put_many(self, model: str, entries: Sequence[tuple[str, Completion]], run: str | None = None) -> None:
        """Store finished generations in one transaction; failed items are never cached. With
        ``run``, every entry (failed ones with their error) is also recorded as that run's."""
        now = time.time()
        tables = {"generations": [(k, model, c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason, now)
                                  for k, c in entries if c.error is None]}
        if run is not None:
            tables["run_items"] = [(run, k, None if c.error is None else json.dumps(asdict(c)), now) for k, c in entries]
        self._insert(tables)

    def run_items(self, run: str, keys: Sequence[str]) -> dict[str, Completion | None]:
        """Which of ``keys`` run ``run`` generated: None for a stored answer, the Completion of a failed item."""
        found: dict[str, Completion | None] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            for key, error in self._db.execute(
                f"SELECT key, error FROM run_items WHERE run = ? AND key IN ({','.join('?' * len(chunk))})", [run, *chunk]
            ):
                found[key] = None if error is None else Completion(**json.loads(error))
        return found

    def get_scores(self, keys: Sequence[str]) -> dict[str, dict[str, float]]:
        return {key: json.loads(value) for key, value in self._rows("scores", "scores", keys)}

    def put_scores(self, entries: Sequence[tuple[str, dict[str, float]]]) -> None:
        self._insert({"scores": [(k, json.dumps(v, sort_keys=True), time.time()) for k, v in entries]})

    def _rows(self, table: str, columns: str, keys: Sequence[str]) -> list[tuple[Any, ...]]:
        """Rows (key first) of the given keys; chunked below SQLite's limit on query parameters."""
        unique = list(dict.fromkeys(keys))
        rows: list[tuple[Any, ...]] = []
        with self._guard():
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                rows += self._db.execute(
                    f"SELECT key, {columns} FROM {table} WHERE key IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
        return rows

    def _insert(self, tables: dict[str, list[tuple[Any, ...]]]) -> None:
        """Rows into their tables, all in one transaction (a killed run keeps all or none)."""
        tables = {name: rows for name, rows in tables.items() if rows}
        if not tables:
            return
        with self._guard(), self._db:  # BEGIN ... COMMIT, retried by sqlite's busy timeout under contention
            self._db.execute("BEGIN IMMEDIATE")
            for table, rows in tables.items():
                self._db.executemany(f"INSERT OR REPLACE INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)

    def count(self) -> int:
        with self._guard():
            return int(self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def check_cache_file(path: Path) -> None:
    """Before anything loads: the cache file can be opened (or created) and read."""
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path}: the generation cache path is not a file")
    try:
        cache = GenerationCache(path)
        try:
            cache.count()
        finally:
            cache.close()
    except CacheError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the generation cache ({exc.strerror})") from None
