"""Turn a metric's value, interval, threshold and baseline comparison into a verdict.
Pure: the plugin turns it into pass/fail."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from medgate.regression import Comparison
from medgate.tasks.base import MetricSpec
from medgate.types import TaskResult

Status = Literal["pass", "fail", "no_threshold", "not_computed", "error"]


@dataclass(frozen=True)
class Verdict:
    status: Status
    message: str
    value: float | None
    threshold: float | None
    low: float | None = None  # 95% bootstrap interval over items
    high: float | None = None
    gate_on: str = "point"
    comparison: dict[str, Any] | None = None  # the baseline comparison, when one was made


def check(result: TaskResult, metric: MetricSpec, threshold: float | None, *, gate_on: str = "point",
          comparison: Comparison | None = None) -> Verdict:
    """Thresholds are floors for higher-is-better metrics and ceilings for the others. With
    ``gate_on="interval"`` the interval's bound on the threatening side must clear it. A
    regression against the baseline fails the metric even when the threshold is met."""
    label = f"{result.model} {result.task} {metric.name}"
    value = result.metrics.get(metric.name)
    low, high = result.intervals.get(metric.name, (None, None))
    common = dict(value=value, threshold=threshold, low=low, high=high, gate_on=gate_on,
                  comparison=asdict(comparison) if comparison else None)
    if result.errors:
        first = result.errors[0]
        return Verdict("error", f"{label}: {len(result.errors)} of {len(result.items)} items could not be generated "
                                f"(first: item {first.id}: {first.error})", **common)
    if value is None:
        reason = result.not_computed.get(metric.name, "no items were scored")
        return Verdict("not_computed", f"{label}: not computed: {reason}", **common)
    shown = f"{label} = {value:.4f}" + (f" (95% CI {low:.4f} to {high:.4f})" if low is not None else "")
    problems: list[str] = []
    if threshold is not None:
        by_interval = gate_on == "interval" and low is not None and high is not None
        if metric.higher_is_better:
            bound = low if by_interval else value
            if bound is not None and bound < threshold:
                problems.append(f"has its 95% lower bound {bound:.4f} below the floor {threshold:.4f}" if by_interval
                                else f"is below the floor {threshold:.4f}")
        else:
            bound = high if by_interval else value
            if bound is not None and bound > threshold:
                problems.append(f"has its 95% upper bound {bound:.4f} above the ceiling {threshold:.4f}" if by_interval
                                else f"is above the ceiling {threshold:.4f}")
    if comparison is not None and comparison.regressed:
        problems.append("regressed against the baseline: " + comparison.describe())
    if problems:
        return Verdict("fail", f"{shown} " + "; and ".join(problems), **common)
    if threshold is None and comparison is None:
        return Verdict("no_threshold", f"{shown} (no threshold set for this model)", **common)
    parts = []
    if threshold is not None:
        parts.append(f"meets the {'floor' if metric.higher_is_better else 'ceiling'} {threshold:.4f}")
    if comparison is not None:
        parts.append(f"no regression ({comparison.task} {comparison.metric} drop {comparison.drop:.4f}, "
                     f"Holm p = {comparison.p_adjusted:.4g}, tolerance {comparison.tolerance:.4f})")
    return Verdict("pass", f"{shown}: " + "; ".join(parts), **common)
