"""Turn a metric value and its threshold into a verdict. Pure: the plugin decides pass/fail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from medgate.tasks.base import MetricSpec
from medgate.types import TaskResult

Status = Literal["pass", "fail", "no_threshold", "not_computed", "error"]


@dataclass(frozen=True)
class Verdict:
    status: Status
    message: str
    value: float | None
    threshold: float | None


def check(result: TaskResult, metric: MetricSpec, threshold: float | None) -> Verdict:
    """Thresholds are floors for higher-is-better metrics and ceilings for the others."""
    label = f"{result.model} {result.task} {metric.name}"
    value = result.metrics.get(metric.name)
    if result.errors:
        first = result.errors[0]
        return Verdict(
            "error",
            f"{label}: {len(result.errors)} of {len(result.items)} items could not be generated "
            f"(first: item {first.id}: {first.error})",
            value, threshold,
        )
    if value is None:
        reason = result.not_computed.get(metric.name, "no items were scored")
        return Verdict("not_computed", f"{label}: not computed: {reason}", None, threshold)
    if threshold is None:
        return Verdict("no_threshold", f"{label} = {value:.4f} (no threshold set for this model)", value, None)
    if metric.higher_is_better:
        ok, relation = value >= threshold, ("below the floor" if value < threshold else "meets the floor")
    else:
        ok, relation = value <= threshold, ("above the ceiling" if value > threshold else "within the ceiling")
    return Verdict("pass" if ok else "fail", f"{label} = {value:.4f} is {relation} {threshold:.4f}", value, threshold)
