"""Every verdict rule the plugin applies, as plain functions: a metric on its model's criteria
(threshold, known gap), a comparison test (non-inferiority, an inconclusive one allowed), the
family of comparisons Holm-adjusted together, and the rule (name, margin or tolerance) of each
comparison. The plugin only carries their results to pytest."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Mapping

from medgate.core.errors import MedgateError
from medgate.core.outcome import Comparison, Outcome
from medgate.core.types import MetricSpec, TaskResult
from medgate.judging.criteria import Criteria
from medgate.judging.paired import Reference, compare, judge
from medgate.judging.verdict import check
from medgate.tasks.base import TaskSpec

Rule = Callable[[str, str], tuple[str, float]]


def baseline_rule(criteria: Criteria, metrics: Mapping[str, Mapping[str, MetricSpec]]) -> Rule:
    """Against a --baseline: the model's regression rule, with its tolerance (significant drop)
    or its margin (non-inferiority)."""
    if criteria.regression == "significant_drop":
        return lambda task, metric: ("significant_drop", criteria.tolerance_for(task, metric))
    return non_inferiority_rule(criteria, metrics)


def non_inferiority_rule(criteria: Criteria, metrics: Mapping[str, Mapping[str, MetricSpec]]) -> Rule:
    """Non-inferiority, with the margin of models.toml or the metric's default: ``metrics`` is the
    run's catalogue, so a team's own task has margins like a built-in one."""
    return lambda task, metric: ("non_inferiority", criteria.margin_for(task, metric, metrics[task][metric]))


class Family:
    """The comparisons of a model's selected tasks with one reference, Holm-adjusted together
    (computed once). A task whose data, engine or reference fails is left out of the correction
    and its own tests get the error; the other tasks are still compared."""

    def __init__(self, reference: Callable[[TaskSpec], Reference], candidate: Callable[[TaskSpec], TaskResult],
                 rule: Rule) -> None:
        self._reference, self._candidate, self._rule = reference, candidate, rule
        self._judged: dict[tuple[str, str], Comparison] | None = None
        self._errors: dict[str, MedgateError] = {}

    def comparisons(self, tasks: list[TaskSpec], asking: TaskSpec) -> dict[tuple[str, str], Comparison]:
        if self._judged is None:
            raw: list[Comparison] = []
            for task in tasks:
                try:
                    raw += compare(self._reference(task), self._candidate(task), task)
                except MedgateError as exc:
                    self._errors[task.name] = exc
            self._judged = {(c.task, c.metric): c for c in judge(raw, self._rule)}
        if asking.name in self._errors:
            raise self._errors[asking.name].with_traceback(None)
        return self._judged


def model_verdict(result: TaskResult, metric: MetricSpec, criteria: Criteria,
                  comparison: Comparison | None = None) -> Outcome:
    """A metric on its model's own criteria (and its --baseline comparison). A known gap covers a
    verdict below the bar, never an error: models.toml's expected_failures turns that failure into
    an xfail, and a pass into a failure, so that a gap that closed is noticed (strict, like
    xfail_strict)."""
    outcome = check(result, metric, criteria.threshold(result.task, metric.name), gate_on=criteria.gate_on,
                    comparison=comparison)
    gap = criteria.expected_failures.get(result.task)
    if gap and outcome.status == "fail":
        return replace(outcome, status="known_gap", message=f"{outcome.message} [known gap (models.toml): {gap}]")
    if gap and outcome.status == "pass":
        return replace(outcome, status="fail", message=f"{outcome.message}; but models.toml expects this task "
                       f"to fail ({gap}): the gap closed, remove expected_failures.{result.task}")
    return outcome


def pair_verdict(result: TaskResult, metric: MetricSpec, criteria: Criteria, comparison: Comparison | None,
                 against: str, reference_label: str) -> Outcome:
    """A candidate's metric against a reference: gated by its comparison alone; an inconclusive
    comparison is a known gap when the candidate's criteria allow it (``inconclusive = "xfail"``)."""
    outcome = check(result, metric, None, comparison=comparison, against=against)
    if comparison is None and outcome.status != "not_computed":
        return replace(outcome, status="not_computed", message=f"{result.model} {result.task} {metric.name}: not "
                       f"computed: {reference_label} has no score for this metric to compare with")
    if comparison is not None and comparison.verdict == "inconclusive" and criteria.inconclusive == "xfail":
        return replace(outcome, status="known_gap", message=f"{outcome.message} [inconclusive allowed (models.toml): xfail]")
    return outcome
