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
    files once the session ends: for every run of the clinical tests, also one where everything
    errored or skipped. A run that scored nothing fails."""

    def __init__(self, state: RunState, medical_run: bool) -> None:
        self.state = state
        self.medical_run = medical_run  # the clinical tests were asked for
        self.outcomes: list[Outcome] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # The verdict of the call; or what ended the test in setup (an error, a missing data file).
        if report.when == "call" or (report.when == "setup" and not report.passed):
            for name, value in report.user_properties:
                if name == OUTCOME_PROPERTY:
                    self.outcomes.append(Outcome.from_json(value))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if session.config.option.collectonly or not (self.outcomes or self.medical_run):
            return
        if not any(o.value is not None for o in self.outcomes) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a green run that gated nothing is not a pass
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
        if terminalreporter.config.option.collectonly or not (self.outcomes or self.medical_run):
            return
        from medgate.reporting.summary import headline, verdict_table

        terminalreporter.section("medgate verdicts")
        terminalreporter.write_line(headline(self.outcomes))
        for line in verdict_table(self.outcomes):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"summary: {self.state.config.reports_dir / 'summary.md'}")
