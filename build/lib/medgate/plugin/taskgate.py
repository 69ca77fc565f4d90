"""The gates a clinical test uses.

- ModelGate: one model's run and what is done once per model (baselines saved, samples attached,
  the comparison with a --baseline), shared by every test of the model in this process.
- PairGate: a candidate model against the reference of --against (a model of this run, or a
  model's stored baseline): the family of non-inferiority comparisons, Holm-adjusted together.
- TaskGate: one test's task, computed during fixture setup (so a data or engine failure is an
  error of the test, not a failure), and the verdict on one metric.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from medgate.core.errors import ConfigError, EngineError
from medgate.core.outcome import Comparison, Outcome
from medgate.core.types import TaskResult
from medgate.core.versions import package_versions
from medgate.judging.baselines import baseline_reference, save_baseline
from medgate.judging.paired import Reference, reference_of
from medgate.judging.rules import Family, baseline_rule, model_verdict, non_inferiority_rule, pair_verdict
from medgate.judging.verdict import item_errors
from medgate.pipeline.model_run import ModelRun
from medgate.plugin.options import Against
from medgate.plugin.state import ITEMS_PROPERTY, OUTCOME_PROPERTY, GateKey, RunState
from medgate.reporting.junit import junit_properties
from medgate.reporting.allure import attach_json, attach_samples, record_test, sample_records, write_perf
from medgate.tasks.base import TaskSpec


class ModelGate:
    """One model's run plus the plugin's once-per-model work."""

    def __init__(self, run: ModelRun, state: RunState) -> None:
        self.run = run
        self.state = state
        self.saved: set[str] = set()  # tasks whose baseline this run saved
        self.attached: set[str] = set()  # tasks whose samples are attached
        self.recorded: set[str] = set()  # tasks whose per-item scores went to the controller
        self._baseline: Family | None = None

    def baseline_comparisons(self, tasks: list[TaskSpec], asking: TaskSpec) -> dict[tuple[str, str], Comparison]:
        """Every selected task of this model against --baseline, by the model's regression rule."""
        config, spec = self.state.config, self.run.spec
        assert config.baseline is not None
        if self._baseline is None:
            name = config.baseline
            rule = baseline_rule(self.state.criteria_of(spec.name), self.state.catalogue.metrics())
            self._baseline = Family(
                lambda task: baseline_reference(config.baselines_dir, name, spec.name, task.name, f"baseline '{name}'"),
                self.run.result, rule)
        return self._baseline.comparisons(tasks, asking)

    def close(self) -> None:
        self.run.close()


class PairGate:
    """A candidate against --against's reference: non-inferiority on every selected task and metric."""

    def __init__(self, candidate: ModelGate, against: Against, reference: ModelGate | None, state: RunState) -> None:
        self.candidate = candidate
        self.against = against
        self.reference = reference  # None: the reference's scores come from its baseline
        self.state = state
        self.label = against.description
        criteria = state.criteria_of(candidate.run.spec.name)
        self._family = Family(self._reference_of, candidate.run.result,
                              non_inferiority_rule(criteria, state.catalogue.metrics()))

    def _reference_of(self, task: TaskSpec) -> Reference:
        if not self.against.generated:
            assert self.against.baseline is not None
            return baseline_reference(self.state.config.baselines_dir, self.against.baseline, self.against.spec.name,
                                      task.name, self.label)
        return reference_of(self.reference.run.result(task), self.label)

    def comparisons(self, tasks: list[TaskSpec], asking: TaskSpec) -> dict[tuple[str, str], Comparison]:
        return self._family.comparisons(tasks, asking)


class TaskGate:
    """A task's result for one gate, computed during fixture setup, and the verdict on each metric."""

    def __init__(self, request: pytest.FixtureRequest, gate: ModelGate | PairGate, key: GateKey, task: TaskSpec) -> None:
        self.request = request
        self.task = task
        self.pair = gate if isinstance(gate, PairGate) else None
        self.model = gate.candidate if isinstance(gate, PairGate) else gate
        state, run = self.model.state, self.model.run
        # One batched generation for every task this model needs, before any is scored.
        run.prefetch(state.tasks_of_model(run.spec.name, task))
        self.result: TaskResult = run.result(task)
        problem = item_errors(self.result)
        if problem:  # an error of the tests (pytest, Allure and the summary all say "error")
            raise EngineError(f"{run.spec.name} {task.name}: {problem}")
        tasks = state.selected_tasks(key, task)
        self.comparisons: dict[tuple[str, str], Comparison] = {}
        if self.pair is not None:
            if self.pair.reference is not None:
                ref = self.pair.reference.run
                ref.prefetch(state.tasks_of_model(ref.spec.name, task))
            self.comparisons = self.pair.comparisons(tasks, task)
            return
        config = state.config
        if config.save_baseline and task.name not in self.model.saved:
            save_baseline(config.baselines_dir, config.save_baseline, self.result, package_versions())
            self.model.saved.add(task.name)
        if config.baseline:  # in setup, so a baseline that does not fit is an error of the test
            self.comparisons = self.model.baseline_comparisons(tasks, task)

    def gate(self, metric: str) -> Outcome:
        if metric not in self.task.metrics:
            raise ConfigError(f"{self.task.name} has no metric {metric!r} (known: {', '.join(self.task.metrics)})")
        self._attach_samples()
        outcome = self._verdict(metric)
        self._record(outcome)
        if outcome.comparison is not None:
            self._attach_flips(outcome.comparison)
        if outcome.status == "known_gap":
            pytest.xfail(outcome.message)
        if outcome.status == "fail":
            pytest.fail(outcome.message, pytrace=False)
        if outcome.status in ("no_threshold", "not_computed"):
            pytest.skip(outcome.message)
        return outcome

    def _verdict(self, metric: str) -> Outcome:
        criteria = self.model.state.criteria_of(self.model.run.spec.name)
        comparison = self.comparisons.get((self.task.name, metric))
        spec = self.task.metrics[metric]
        if self.pair is not None:
            return pair_verdict(self.result, spec, criteria, comparison, self.pair.against.label, self.pair.label)
        return model_verdict(self.result, spec, criteria, comparison)

    def _attach_samples(self) -> None:
        """Once per model and task, on a test (not its fixture, where Allure would file it apart)."""
        model, task = self.model, self.task
        if task.name in model.attached:
            return
        # Prompts and outputs of user data may be credentialed patient text: only when asked.
        if self._shareable():
            attach_samples(task.name, sample_records(self.result, model.run.plan(task).chats))
        model.attached.add(task.name)

    def _shareable(self) -> bool:
        """Texts of this task may go into reports: the file is one medgate ships (by its hash), or
        the user passed --attach-samples. Anything else may be patient text, wherever it lives."""
        return self.result.provenance.get("data_source") == "synthetic" or self.model.state.config.attach_samples

    def _attach_flips(self, comparison: Comparison) -> None:
        """The outputs of the items that flipped, candidate beside reference: only for synthetic
        data or with --attach-samples (user data may hold patient text); reports carry the ids."""
        model = self.model
        if not self._shareable():
            return
        ids = set(comparison.flips_worse) | set(comparison.flips_better)
        if not ids:
            return
        mine = {i.id: i.output for i in self.result.items}
        theirs: dict[str, str] = {}
        if self.pair is not None and self.pair.reference is not None:
            theirs = {i.id: i.output for i in self.pair.reference.run.result(self.task).items}
        flips = [{"id": i, "direction": "worse" if i in comparison.flips_worse else "better",
                  "candidate_output": mine.get(i), "reference_output": theirs.get(i)} for i in sorted(ids)]
        attach_json(f"{self.task.name}-{comparison.metric}-flips.json", flips)

    def _record(self, outcome: Outcome) -> None:
        """Put the verdict on the test report (for the controller's summary) and in Allure."""
        self.request.node.user_properties.append((OUTCOME_PROPERTY, outcome.to_json()))
        self.request.node.user_properties.extend(junit_properties(outcome))  # --junitxml: value, interval, verdict
        gates = [(self.model, self.result)]
        if self.pair is not None and self.pair.reference is not None:
            gates.append((self.pair.reference, self.pair.reference.run.result(self.task)))
        for gate, result in gates:  # per-item scores, once per model and task (the run record, its Merkle roots)
            if self.task.name not in gate.recorded:
                items = [{"id": i.id, "scores": dict(i.scores)} for i in result.items]
                self.request.node.user_properties.append((ITEMS_PROPERTY, json.dumps(
                    {"model": gate.run.spec.name, "task": self.task.name, "items": items})))
                gate.recorded.add(self.task.name)
        allure_dir = getattr(self.request.config.option, "allure_report_dir", None)
        if allure_dir and outcome.value is not None:
            now = int(time.time() * 1000)
            write_perf(allure_dir, outcome, start_ms=now, stop_ms=now)
        record_test(outcome, self.result, run_specific={
            "data_dir": str(self.result.provenance.get("dataset", "")),
            "device": str(self.result.provenance.get("device", "")),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        })


def error_outcome(model: str, task: TaskSpec, metric: Any, message: str, against: str | None = None) -> Outcome:
    """The record of a test that errored before its verdict (data, engine, baseline)."""
    return _unscored(model, task, metric, "error", message, against)


def skipped_outcome(model: str, task: TaskSpec, metric: Any, message: str, against: str | None = None) -> Outcome:
    """The record of a test whose task has no data file in the data folder (the documented skip)."""
    return _unscored(model, task, metric, "skipped", message, against)


def _unscored(model: str, task: TaskSpec, metric: Any, status: Any, message: str, against: str | None) -> Outcome:
    metric_name = str(metric)
    spec = task.metrics.get(metric_name)
    return Outcome(model=model, task=task.name, metric=metric_name, status=status, message=message,
                   higher_is_better=spec.higher_is_better if spec else True, against=against)
