"""The gates a clinical test uses: one ModelGate per model (its run, and what is done once per
model: baselines saved, samples attached, the baseline comparison) and a TaskGate per test,
which computes its task during fixture setup and judges one metric."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any

import pytest

from medgate.core.errors import ConfigError, EngineError, MedgateError
from medgate.core.outcome import Comparison, Outcome
from medgate.core.types import TaskResult
from medgate.core.versions import package_versions
from medgate.judging.baselines import load_baseline, save_baseline
from medgate.judging.regression import compare, judge
from medgate.judging.verdict import check, item_errors
from medgate.pipeline.model_run import ModelRun
from medgate.plugin.state import OUTCOME_PROPERTY, RunState
from medgate.reporting.allure import attach_samples, record_test, sample_records, write_perf
from medgate.tasks.base import TaskSpec


class ModelGate:
    """One model's run plus the plugin's once-per-model work."""

    def __init__(self, run: ModelRun, state: RunState) -> None:
        self.run = run
        self.state = state
        self.saved: set[str] = set()  # tasks whose baseline this run saved
        self.attached: set[str] = set()  # tasks whose samples are attached
        self._comparisons: dict[tuple[str, str], Comparison] | None = None
        self._comparison_errors: dict[str, MedgateError] = {}

    def comparisons(self, tasks: list[TaskSpec], asking: TaskSpec) -> dict[tuple[str, str], Comparison]:
        """Every selected task of this model against the baseline, Holm-adjusted together.

        A task whose data, engine or baseline fails is left out of the correction and its own
        tests get the error; the other tasks are still compared."""
        config = self.state.config
        assert config.baseline is not None
        if self._comparisons is None:
            raw: list[Comparison] = []
            for task in tasks:
                try:
                    stored = load_baseline(config.baselines_dir, config.baseline, self.run.spec.name, task.name)
                    raw += compare(stored, self.run.result(task), task)
                except MedgateError as exc:
                    self._comparison_errors[task.name] = exc
            self._comparisons = {(c.task, c.metric): c for c in judge(raw, self.run.spec.tolerance_for)}
        if asking.name in self._comparison_errors:
            raise self._comparison_errors[asking.name]
        return self._comparisons

    def close(self) -> None:
        self.run.close()


class TaskGate:
    """A task's result for one model, computed during fixture setup (so a data or engine failure
    shows as an error of the test, not a failure), and the gate on each metric."""

    def __init__(self, request: pytest.FixtureRequest, model: ModelGate, task: TaskSpec) -> None:
        self.request = request
        self.model = model
        self.task = task
        state = model.state
        run = model.run
        tasks = state.selected_tasks(run.spec.name, task)
        # One batched generation for every selected task of this model, before any is scored.
        run.prefetch(tasks)
        self.result: TaskResult = run.result(task)
        problem = item_errors(self.result)
        if problem:  # an error of the tests (pytest, Allure and the summary all say "error")
            raise EngineError(f"{run.spec.name} {task.name}: {problem}")
        if state.config.save_baseline and task.name not in model.saved:
            save_baseline(state.config.baselines_dir, state.config.save_baseline, self.result, package_versions())
            model.saved.add(task.name)
        self.comparisons: dict[tuple[str, str], Comparison] = {}
        if state.config.baseline:  # in setup, so a baseline that does not fit is an error of the test
            self.comparisons = model.comparisons(tasks, task)

    def gate(self, metric: str) -> Outcome:
        if metric not in self.task.metrics:
            raise ConfigError(f"{self.task.name} has no metric {metric!r} (known: {', '.join(self.task.metrics)})")
        self._attach_samples()
        spec = self.model.run.spec
        outcome = check(self.result, self.task.metrics[metric], spec.threshold(self.task.name, metric),
                        gate_on=spec.gate_on, comparison=self.comparisons.get((self.task.name, metric)))
        # A known gap covers a verdict below the bar, never an error (those are raised in setup):
        # models.toml's expected_failures turns that failure into an xfail, and a pass into a
        # failure, so that a gap that closed is noticed (strict, like xfail_strict).
        gap = spec.expected_failures.get(self.task.name)
        if gap and outcome.status == "fail":
            outcome = replace(outcome, status="known_gap", message=f"{outcome.message} [known gap (models.toml): {gap}]")
        elif gap and outcome.status == "pass":
            outcome = replace(outcome, status="fail", message=f"{outcome.message}; but models.toml expects this task "
                              f"to fail ({gap}): the gap closed, remove expected_failures.{self.task.name}")
        self._record(outcome)
        if outcome.status == "known_gap":
            pytest.xfail(f"known gap (models.toml): {gap}")
        if outcome.status == "fail":
            pytest.fail(outcome.message, pytrace=False)
        if outcome.status in ("no_threshold", "not_computed"):
            pytest.skip(outcome.message)
        return outcome

    def _attach_samples(self) -> None:
        """Once per model and task, on a test (not its fixture, where Allure would file it apart)."""
        model, task = self.model, self.task
        if task.name in model.attached:
            return
        # Prompts and outputs of user data may be credentialed patient text: only when asked.
        if model.run.settings.data_source == "synthetic" or model.state.config.attach_samples:
            attach_samples(task.name, sample_records(self.result, model.run.plan(task).chats))
        model.attached.add(task.name)

    def _record(self, outcome: Outcome) -> None:
        """Put the verdict on the test report (for the controller's summary) and in Allure."""
        self.request.node.user_properties.append((OUTCOME_PROPERTY, outcome.to_json()))
        allure_dir = getattr(self.request.config.option, "allure_report_dir", None)
        if allure_dir and outcome.value is not None:
            now = int(time.time() * 1000)
            write_perf(allure_dir, outcome, start_ms=now, stop_ms=now)
        record_test(outcome, self.result, run_specific={
            "data_dir": str(self.result.provenance.get("dataset", "")),
            "device": str(self.result.provenance.get("device", "")),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        })


def error_outcome(model: str, task: TaskSpec, metric: Any, message: str) -> Outcome:
    """The record of a test that errored before its verdict (data, engine, baseline)."""
    return _unscored(model, task, metric, "error", message)


def skipped_outcome(model: str, task: TaskSpec, metric: Any, message: str) -> Outcome:
    """The record of a test whose task has no data file in the data folder (the documented skip)."""
    return _unscored(model, task, metric, "skipped", message)


def _unscored(model: str, task: TaskSpec, metric: Any, status: Any, message: str) -> Outcome:
    metric_name = str(metric)
    spec = task.metrics.get(metric_name)
    return Outcome(model=model, task=task.name, metric=metric_name, status=status, message=message,
                   higher_is_better=spec.higher_is_better if spec else True)
