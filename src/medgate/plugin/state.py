"""The run's state shared by hooks and fixtures, and the controller that gathers every verdict
and writes the reports (on the xdist controller, or the single process without xdist)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from medgate.core.outcome import Outcome
from medgate.pipeline.board import ShardBoard
from medgate.pipeline.model_run import ModelRun
from medgate.pipeline.shards import Shard
from medgate.plugin.options import RunConfig
from medgate.tasks.base import TaskSpec

OUTCOME_PROPERTY = "medgate"  # the user_properties key that carries an Outcome (xdist ships it back)


@dataclass
class RunState:
    config: RunConfig
    selected: dict[str, dict[str, TaskSpec]] = field(default_factory=dict)  # model -> task name -> task
    runs: dict[str, ModelRun] = field(default_factory=dict)  # planned before the tests (data-parallel)
    board: ShardBoard | None = None  # data-parallel generation: the shard board of this run
    shards: dict[str, list[Shard]] = field(default_factory=dict)  # model -> its shards, on every worker
    worker: str | None = None  # this xdist worker's id ("gw0"); None without xdist

    def selected_tasks(self, model: str, fallback: TaskSpec) -> list[TaskSpec]:
        """The model's selected tasks (after -k/-m); the asking task when collection saw none."""
        return list(self.selected.get(model, {fallback.name: fallback}).values())

    def new_run(self, name: str, quiet: Any = None) -> ModelRun:
        spec = self.config.models[name]
        return ModelRun(spec, self.config.settings, quiet) if quiet else ModelRun(spec, self.config.settings)

    def model_run(self, name: str, quiet: Any = None) -> ModelRun:
        """The model's run: the one planned for data-parallel generation (taken once), else a new one."""
        run = self.runs.pop(name, None) or self.new_run(name, quiet)
        if self.board is not None and name in self.shards:
            run.share(self.board, self.shards[name], self.config.shard_timeout)
        elif self.board is not None and self.worker is not None:
            run.report_to(self.board, self.worker)
        return run


STATE = pytest.StashKey[RunState]()


def quiet_capture(config: pytest.Config) -> Any:
    """What lets the engine's progress bar reach the terminal through pytest's capture."""
    capman = config.pluginmanager.getplugin("capturemanager")
    return capman.global_and_fixture_disabled if capman is not None else None


class Controller:
    """Gathers outcomes from test reports and writes summary, charts, run record and Allure run
    files once the session ends."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.outcomes: list[Outcome] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == OUTCOME_PROPERTY and (report.when == "call" or (report.when == "setup" and report.failed)):
                outcome = Outcome.from_json(value)
                if getattr(report, "wasxfail", None):  # a known gap from models.toml
                    outcome = Outcome.from_dict({**outcome.to_dict(), "status": "known_gap",
                                                 "message": f"{outcome.message} [{report.wasxfail}]"})
                self.outcomes.append(outcome)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.outcomes:
            return
        from medgate.reporting.allure import write_run_files
        from medgate.reporting.charts import model_chart
        from medgate.reporting.summary import environment_properties, write_summary
        from medgate.reporting.table import store_run, write_models_table

        reports = self.state.config.reports_dir
        write_summary(reports, self.outcomes)
        for model in sorted({o.model for o in self.outcomes}):
            model_chart(model, self.outcomes, reports / "charts" / f"{model}.png")
        store_run(reports, self.outcomes)
        write_models_table(reports)
        allure_dir = getattr(session.config.option, "allure_report_dir", None)
        if allure_dir:
            write_run_files(allure_dir, environment_properties(self.outcomes), os.environ)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.outcomes:
            return
        from medgate.reporting.summary import verdict_table

        terminalreporter.section("medgate verdicts")
        for line in verdict_table(self.outcomes):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"summary: {self.state.config.reports_dir / 'summary.md'}")
