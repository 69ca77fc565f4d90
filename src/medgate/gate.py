"""What the plugin shares across hooks and fixtures: the run's state, and the TaskGate that a
clinical test uses to compute its task once per model and judge one metric."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from medgate import gating
from medgate.baseline import save_baseline
from medgate.config import ModelSpec, Registry
from medgate.errors import ConfigError, MedgateError
from medgate.session import ModelSession, RunSettings
from medgate.tasks.base import TaskSpec
from medgate.versions import package_versions


@dataclass
class State:
    registry: Registry
    models: dict[str, ModelSpec]
    settings: RunSettings
    reports_dir: Path
    outcomes: list[dict[str, Any]]
    baselines_dir: Path
    save_baseline: str | None = None
    baseline: str | None = None
    selected: dict[str, dict[str, TaskSpec]] = field(default_factory=dict)  # model -> task name -> task


STATE = pytest.StashKey[State]()


class TaskGate:
    """A task's result for one model, computed during fixture setup (so a data or engine
    failure shows as an error of the test, not a failure), and the gate on each metric."""

    def __init__(self, request: pytest.FixtureRequest, session: ModelSession, task: TaskSpec) -> None:
        self.request = request
        self.session = session
        self.task = task
        self.state = request.config.stash[STATE]
        tasks = list(self.state.selected.get(session.spec.name, {task.name: task}).values())
        # One batched generation for every selected task of this model, before any is scored.
        session.prefetch(tasks)
        self.result = session.result(task)
        if self.state.save_baseline and task.name not in session.saved_baselines:
            save_baseline(self.state.baselines_dir, self.state.save_baseline, self.result, package_versions())
            session.saved_baselines.add(task.name)
        self.comparisons: dict[tuple[str, str], Any] = {}
        if self.state.baseline:  # in setup, so a baseline that does not fit is an error of the test
            self.comparisons = session.comparisons(tasks, self.state.baselines_dir, self.state.baseline, task)

    def gate(self, metric: str) -> gating.Verdict:
        if metric not in self.task.metrics:
            raise ConfigError(f"{self.task.name} has no metric {metric!r} (known: {', '.join(self.task.metrics)})")
        self._attach_samples()
        spec = self.session.spec
        comparison = self.comparisons.get((self.task.name, metric))
        verdict = gating.check(self.result, self.task.metrics[metric], spec.threshold(self.task.name, metric),
                               gate_on=spec.gate_on, comparison=comparison)
        record_verdict(self.request, self.result, self.task, metric, verdict)
        if verdict.status == "fail":
            pytest.fail(verdict.message, pytrace=False)
        if verdict.status == "error":
            raise MedgateError(verdict.message)
        if verdict.status in ("no_threshold", "not_computed"):
            pytest.skip(verdict.message)
        return verdict

    def _attach_samples(self) -> None:
        """Once per model and task, on a test (not its fixture, where Allure would file it apart)."""
        session, task = self.session, self.task
        if task.name in session.attached_samples:
            return
        # Prompts and outputs of user data may be credentialed patient text: only when asked.
        if session.settings.data_source == "synthetic" or self.request.config.getoption("medgate_attach_samples"):
            from medgate.reporting.allure import attach_samples

            attach_samples(task.name, session.samples(task))
        session.attached_samples.add(task.name)


def record_verdict(request: pytest.FixtureRequest, result: Any, task: TaskSpec, metric: str, verdict: gating.Verdict) -> None:
    """Put the verdict on the test report (for the controller's summary) and in Allure."""
    from medgate.reporting.allure import record_test

    outcome = {
        "model": result.model, "task": task.name, "metric": metric, "status": verdict.status,
        "value": verdict.value, "low": verdict.low, "high": verdict.high, "threshold": verdict.threshold,
        "gate_on": verdict.gate_on, "higher_is_better": task.metrics[metric].higher_is_better,
        "comparison": verdict.comparison, "message": verdict.message,
        "provenance": {k: v for k, v in result.provenance.items() if k != "fewshot_ids"},
    }
    request.node.user_properties.append(("medgate", json.dumps(outcome, default=str)))
    details = {**outcome, "per_item": [
        {"id": item.id, "scores": dict(item.scores), "error": item.error} for item in result.items
    ]}
    allure_dir = getattr(request.config.option, "allure_report_dir", None)
    if allure_dir and verdict.value is not None:
        from medgate.reporting.allure import write_perf

        now = int(time.time() * 1000)
        write_perf(allure_dir, model=result.model, task=task.name, metric=metric, value=verdict.value,
                   better="higher" if task.metrics[metric].higher_is_better else "lower", start_ms=now, stop_ms=now)
    record_test(
        model=result.model, task=task.name, metric=metric, verdict=asdict(verdict), details=details,
        run_specific={"data_dir": str(result.provenance.get("dataset", "")),
                      "device": str(result.provenance.get("device", "")),
                      "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "")},
    )
