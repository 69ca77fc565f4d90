"""The controller's view of data-parallel generation: one bar per model (prompts answered of
the total, tokens per second) fed by the workers through the shard board, because pytest does
not show xdist workers' terminals. It also records on the board a worker that went down, so the
worker waiting for that worker's shard stops waiting and says why.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, Generator, TextIO

import pytest

from medgate.pipeline.board import ModelProgress, ShardBoard

# prompts answered of the total and tokens per second; tqdm's own rate would count cached prompts
_FORMAT = "{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"  # tqdm adds ": " and ", "


class GenerationProgress:
    """Registered on the xdist controller; idle until xdist starts workers."""

    def __init__(self, cache_path: Path, *, interval: float = 1.0, stream: TextIO | None = None) -> None:
        self.cache_path = cache_path
        self.interval = interval
        self.stream = stream
        self.board: ShardBoard | None = None
        self._bars: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.board is None:  # every worker of the run shares xdist's run id
            self.board = ShardBoard(self.cache_path, str(node.workerinput["testrunuid"]))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        if error is not None and self.board is not None:
            lines = str(error).strip().splitlines()  # xdist's cause, e.g. "Not properly terminated"
            self.board.worker_down(str(node.gateway.id), lines[-1][:300] if lines else "crashed")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, Any, Any]:
        if self.board is not None:
            self._thread = threading.Thread(target=self._watch, name="medgate-progress", daemon=True)
            self._thread.start()
        try:
            return (yield)
        finally:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=10)
                self._show()  # the final state, for runs shorter than one interval
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()

    def pytest_unconfigure(self) -> None:
        if self.board is not None:
            self.board.close()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self._show()

    def _show(self) -> None:
        try:
            assert self.board is not None
            for model, progress in self.board.progress().items():
                self._draw(model, progress)
        except Exception:  # a bar must never break a run (no terminal, a closed stream, a busy file)
            pass

    def _draw(self, model: str, progress: ModelProgress) -> None:
        from tqdm import tqdm

        bar = self._bars.get(model)
        if bar is None:
            bar = self._bars[model] = tqdm(total=progress.total, desc=f"{model} generation", unit="prompt",
                                           position=len(self._bars), file=self.stream or sys.__stderr__,
                                           mininterval=0, dynamic_ncols=True, bar_format=_FORMAT)
        if bar.disable or (bar.n == progress.done and bar.total == progress.total and not progress.finished):
            return
        seconds = (progress.updated if progress.finished else time.time()) - progress.started
        bar.total = progress.total
        workers = f"{progress.workers} worker{'s' if progress.workers != 1 else ''}"
        bar.set_description(f"{model} generation ({workers})", refresh=False)
        bar.set_postfix_str(f"{progress.tokens / max(seconds, 1e-3):.0f} toks/s", refresh=False)
        bar.update(progress.done - bar.n)
        if progress.finished:
            bar.close()
            bar.disable = True  # closed: later polls leave it alone
