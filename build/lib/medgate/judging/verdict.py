"""Turn a metric's value, interval, threshold and baseline comparison into a verdict.
Pure: the plugin turns it into pass/fail."""

from __future__ import annotations

from typing import Any

from medgate.core.outcome import Comparison, Outcome
from medgate.core.types import MetricSpec, TaskResult

# Provenance that stays out of the verdict record (long lists, not needed by any report).
_PRIVATE_PROVENANCE = ("fewshot_ids",)


def check(result: TaskResult, metric: MetricSpec, threshold: float | None, *, gate_on: str = "point",
          comparison: Comparison | None = None, against: str | None = None) -> Outcome:
    """Thresholds are floors for higher-is-better metrics and ceilings for the others. With
    ``gate_on="interval"`` the interval's bound on the threatening side must clear it. A
    regression against the baseline fails the metric even when the threshold is met. ``against``
    names the reference model of a comparison test (candidate vs reference), which is gated by
    its comparison alone."""
    label = f"{result.model} {result.task} {metric.name}"
    value = result.metrics.get(metric.name)
    low, high = result.intervals.get(metric.name, (None, None))
    common: dict[str, Any] = dict(
        model=result.model, task=result.task, metric=metric.name, value=value, threshold=threshold, low=low, high=high,
        gate_on=gate_on, higher_is_better=metric.higher_is_better, comparison=comparison, against=against,
        provenance={k: v for k, v in result.provenance.items() if k not in _PRIVATE_PROVENANCE},
    )
    if result.errors:
        return Outcome(status="error", message=f"{label}: {item_errors(result)}", **common)
    if value is None:
        reason = result.not_computed.get(metric.name, "no items were scored")
        return Outcome(status="not_computed", message=f"{label}: not computed: {reason}", **common)
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
    if comparison is not None and comparison.fails:
        prefix = "regressed against the baseline: " if comparison.rule == "significant_drop" else ""
        problems.append(prefix + comparison.describe())
    if problems:
        return Outcome(status="fail", message=f"{shown} " + "; and ".join(problems), **common)
    if threshold is None and comparison is None:
        return Outcome(status="no_threshold", message=f"{shown} (no threshold set for this model)", **common)
    parts = []
    if threshold is not None:
        parts.append(f"meets the {'floor' if metric.higher_is_better else 'ceiling'} {threshold:.4f}")
    if comparison is not None and comparison.rule == "significant_drop":
        parts.append(f"no regression ({comparison.task} {comparison.metric} drop {comparison.drop:.4f}, "
                     f"Holm p = {comparison.p_adjusted:.4g}, tolerance {comparison.margin:.4f})")
    elif comparison is not None:
        parts.append(comparison.describe())
    return Outcome(status="pass", message=f"{shown}: " + "; ".join(parts), **common)


def item_errors(result: TaskResult) -> str | None:
    """What went wrong with the items that could not be generated, or None when every item ran."""
    errors = result.errors
    if not errors:
        return None
    shots = result.provenance.get("fewshot_ids") or []
    if len(errors) == len(result.items) and shots and all("does not fit the context" in (e.error or "") for e in errors):
        # Every prompt too long: the part they share (system prompt and few-shot examples) is the likely cause.
        shortest = min(e.prompt_tokens for e in errors)
        return (f"every one of the {len(errors)} prompts is longer than the context (the shortest has {shortest} tokens): "
                f"the system prompt and the few-shot examples ({', '.join(map(str, shots))}) alone may not fit; "
                f"first: item {errors[0].id}: {errors[0].error}")
    first = errors[0]
    return f"{len(errors)} of {len(result.items)} items could not be generated (first: item {first.id}: {first.error})"
