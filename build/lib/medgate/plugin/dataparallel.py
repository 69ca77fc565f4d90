"""Data-parallel generation under xdist: with more workers than selected models, each model's
prompts are split among several workers, each with its own engine on its own GPU block.

Every worker computes the same division from the same collected tests and planned prompts
(``pipeline.shards``): nobody hands out work, so nothing changes in xdist's scheduling, and the
tests and their ids are the same for any ``-n``. Each worker generates its shard into the shared
generation cache *before it runs any test*; the worker that scores a model then waits on the
shard board until every shard of it is stored. A worker never waits while holding work that
another worker waits for, so there is no deadlock for any number of workers and models.
"""

from __future__ import annotations

import pytest

from medgate.pipeline.board import ShardBoard
from medgate.pipeline.caching import Request
from medgate.pipeline.shards import assign_shards
from medgate.plugin.state import RunState, quiet_capture


def data_parallel(n_workers: int, n_models: int, unscheduled: bool = False) -> bool:
    """Split models over workers when workers outnumber the generated models; or when as many
    workers as models are there and one of them has no tests of its own (the reference of
    --against): it then gets a worker like any model, and is loaded once, not by every worker
    that compares with it."""
    return 0 < n_models < n_workers or (unscheduled and 0 < n_models <= n_workers)


class ShardWorker:
    """Registered on each xdist worker: generates this worker's shards before its tests run."""

    def __init__(self, config: pytest.Config, state: RunState) -> None:
        self.config = config
        self.state = state

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        # Before xdist's own loop starts taking tests (their commands wait in the channel).
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            return  # collection failed: the run stops, nothing to generate for
        self.generate_share()

    def generate_share(self) -> None:
        state, workerinput = self.state, self.config.workerinput  # type: ignore[attr-defined]
        settings = state.config.settings
        generated = state.generated
        models = sorted(generated)
        n_workers = int(workerinput["workercount"])
        if settings.cache_path is None or settings.rejudge:
            return  # no board: nothing to share (--no-cache) or to generate (--rejudge)
        state.worker = str(workerinput["workerid"])
        # Every model reports its generation here, for the controller's bars; shards meet here.
        state.board = ShardBoard(settings.cache_path, str(workerinput["testrunuid"]))
        if not data_parallel(n_workers, len(models), bool(state.unscheduled)):
            return  # one worker per model: each reports as its model's only shard
        quiet = quiet_capture(self.config)
        requests: dict[str, list[Request]] = {}
        weights: dict[str, list[int]] = {}
        for model in models:
            run = state.runs[model] = state.new_run(model, quiet)
            try:
                requests[model] = run.unique_requests(list(generated[model].values()))
                weights[model] = run.estimates(requests[model])
            except Exception:  # the same on every worker; the scoring worker reports it on the tests
                requests[model], weights[model] = [], []
        state.shards = assign_shards(weights, [f"gw{i}" for i in range(n_workers)])
        for model in models:
            for shard in state.shards[model]:
                if shard.worker == state.worker:  # a replacement for a crashed worker (gwN and up) has none
                    try:
                        state.runs[model].generate_shard(shard, requests[model], state.board)
                    except Exception:  # already on the board as failed, for the scoring worker to raise
                        pass

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for run in self.state.runs.values():
            run.close()
        self.state.runs.clear()
        if self.state.board is not None:
            self.state.board.close()

