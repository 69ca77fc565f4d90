"""The shard board: what the scoring worker waits for, and the one-line error when a shard fails,
its worker dies or it never arrives. A pretend clock moves only when the waiter sleeps, so the
timeouts are tested without waiting."""

from __future__ import annotations

import pytest

from medgate.core.errors import EngineError
from medgate.pipeline.board import ShardBoard
from medgate.pipeline.shards import Shard


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def shards(model: str = "m", n: int = 2) -> list[Shard]:
    return [Shard(model=model, index=i, count=n, worker=f"gw{i}", requests=(i,), tokens=10) for i in range(n)]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def board(tmp_path, clock) -> ShardBoard:
    return ShardBoard(tmp_path / "g.sqlite", "run-1", clock=clock)


def test_wait_returns_once_every_shard_is_done_with_the_engine_that_made_it(board, clock):
    first, second = shards()
    for shard in (first, second):
        board.start(shard, total=5)
    board.advance(first, 3, 120)
    assert board.progress()["m"].done == 3 and not board.progress()["m"].finished
    board.finish(first, {"engine": "fake"})
    board.finish(second, {})  # everything was cached: no engine loaded

    rows = board.wait([first, second], timeout=60, sleep=clock.sleep)
    assert [(r.status, r.done, r.engine) for r in rows] == [("done", 5, {"engine": "fake"}), ("done", 5, {})]
    progress = board.progress()["m"]
    assert (progress.done, progress.total, progress.workers, progress.finished) == (10, 10, 2, True)


def test_a_failed_shard_is_an_error_naming_model_shard_worker_and_cause(board, clock):
    first, second = shards()
    board.start(first, total=5)
    board.finish(first, {})
    board.start(second, total=5)
    board.fail(second, "model m: the engine died after 3 answers")
    with pytest.raises(EngineError) as err:
        board.wait([first, second], timeout=60, sleep=clock.sleep)
    assert str(err.value) == "model m: shard 2/2 (worker gw1) failed: model m: the engine died after 3 answers"


def test_a_worker_that_went_down_ends_the_wait_at_once(board, clock):
    first, second = shards()
    board.start(second, total=5)
    board.worker_down("gw1", "Not properly terminated")
    with pytest.raises(EngineError, match=r"^model m: shard 2/2 \(worker gw1\): the worker died before its shard "
                                          r"was done \(Not properly terminated\); finished shards stay"):
        board.wait([second], timeout=600, sleep=clock.sleep)
    assert clock.now == 1_000_000.0  # no waiting for the timeout


def test_a_shard_that_never_starts_or_stops_advancing_times_out_with_a_clear_message(board, clock):
    first, second = shards()
    with pytest.raises(EngineError, match=r"^model m: shard 1/2 \(worker gw0\) did not arrive: never started, "
                                          r"nothing new for 31 s \(--shard-timeout 30\)"):
        board.wait([first, second], timeout=30, poll=1, sleep=clock.sleep)
    board.start(second, total=8)
    board.advance(second, 3, 50)
    start = clock.now
    with pytest.raises(EngineError, match=r"shard 2/2 \(worker gw1\) did not arrive: stopped at 3 of 8 prompts"):
        board.wait([second], timeout=30, poll=1, sleep=clock.sleep)
    assert clock.now - start == 31  # progress resets the clock; silence past the timeout ends the wait


def test_progress_keeps_the_wait_going_and_other_runs_do_not_count(tmp_path, board, clock):
    (shard,) = shards(n=1)
    other = ShardBoard(tmp_path / "g.sqlite", "run-0", clock=clock)
    other.start(shard, total=1)
    other.finish(shard, {})  # done, but in another run
    board.start(shard, total=100)
    steps = iter(range(1, 101))

    def working_sleep(seconds: float) -> None:  # the worker advances while the scorer sleeps
        clock.sleep(seconds)
        done = next(steps)
        board.advance(shard, done, done * 10) if done < 100 else board.finish(shard, {})

    (row,) = board.wait([shard], timeout=20, poll=10, sleep=working_sleep)
    assert row.status == "done" and clock.now - 1_000_000.0 == 1000  # far beyond the timeout, never silent for it
