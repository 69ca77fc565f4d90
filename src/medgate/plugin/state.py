"""The run's state shared by hooks and fixtures, and the controller that gathers every verdict
and writes the reports (on the xdist controller, or the single process without xdist)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from medgate.core.outcome import Outcome
from medgate.plugin.options import RunConfig
from medgate.tasks.base import TaskSpec

OUTCOME_PROPERTY = "medgate"  # the user_properties key that carries an Outcome (xdist ships it back)


@dataclass
class RunState:
    config: RunConfig
    selected: dict[str, dict[str, TaskSpec]] = field(default_factory=dict)  # model -> task name -> task

    def selected_tasks(self, model: str, fallback: TaskSpec) -> list[TaskSpec]:
        """The model's selected tasks (after -k/-m); the asking task when collection saw none."""
        return list(self.selected.get(model, {fallback.name: fallback}).values())


STATE = pytest.StashKey[RunState]()


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
