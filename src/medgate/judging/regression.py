"""Item-by-item comparison of a run with its baseline. Pure: no files, no pytest.

Accuracies (per-item 0/1) use the exact McNemar test, continuous metrics a paired bootstrap;
p-values are Holm-adjusted across every compared metric of a model. A metric regresses when
its drop exceeds its tolerance and is significant after the correction.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

from medgate.core.errors import BaselineError
from medgate.core.outcome import Comparison
from medgate.core.types import TaskResult
from medgate.metrics.stats import holm, mcnemar_exact, paired_bootstrap
from medgate.tasks.base import TaskSpec

ALPHA = 0.05


class BaselineMismatch(BaselineError):
    """The baseline was measured on other items, data or prompts: comparing would mislead."""


def check_comparable(baseline: Mapping[str, Any], result: TaskResult) -> None:
    """Raise BaselineMismatch unless the baseline saw the same data, prompts and items."""
    label = f"{result.model} {result.task}"
    for key in ("dataset_hash", "prompt_version", "decoding"):
        if baseline["provenance"].get(key) != result.provenance.get(key):
            raise BaselineMismatch(
                f"{label}: baseline {baseline['name']!r} has {key} {baseline['provenance'].get(key)!r}, this run "
                f"{result.provenance.get(key)!r}; compare runs of the same data and prompts, or save a new baseline"
            )
    base_ids = {item["id"] for item in baseline["items"]}
    run_ids = {item.id for item in result.items}
    if base_ids != run_ids:
        raise BaselineMismatch(
            f"{label}: baseline {baseline['name']!r} scored {len(base_ids)} items, this run {len(run_ids)} "
            f"({len(base_ids - run_ids)} only in the baseline, {len(run_ids - base_ids)} only in this run); "
            f"use the same --limit and data"
        )


def compare(baseline: Mapping[str, Any], result: TaskResult, task: TaskSpec, *, seed: int = 0) -> list[Comparison]:
    """Unadjusted comparisons of every metric both runs scored, paired by item id."""
    check_comparable(baseline, result)
    base_scores = {item["id"]: item["scores"] for item in baseline["items"]}
    out = []
    for name, spec in task.metrics.items():
        pairs = [(base_scores[item.id][name], item.scores[name]) for item in result.items
                 if name in item.scores and name in base_scores.get(item.id, {})]
        if not pairs:
            continue
        before, after = [b for b, _ in pairs], [a for _, a in pairs]
        diff = paired_bootstrap(before, after, seed=seed)
        sign = 1.0 if spec.higher_is_better else -1.0
        # drop = how much worse; its interval flips with the sign
        low, high = sorted((-sign * diff.high, -sign * diff.low))
        p = mcnemar_exact(before, after) if spec.binary else diff.p_value
        out.append(Comparison(
            task=task.name, metric=name, test="exact McNemar" if spec.binary else "paired bootstrap",
            n_pairs=len(pairs), baseline=sum(before) / len(before), current=sum(after) / len(after),
            drop=-sign * diff.delta, drop_low=low, drop_high=high, p_value=p,
        ))
    return out


def judge(comparisons: Sequence[Comparison], tolerance: Callable[[str, str], float], alpha: float = ALPHA) -> list[Comparison]:
    """Holm-adjust across all comparisons of a model and mark the regressions."""
    adjusted = holm([c.p_value for c in comparisons])
    out = []
    for c, p_adj in zip(comparisons, adjusted):
        tol = tolerance(c.task, c.metric)
        out.append(replace(c, p_adjusted=p_adj, tolerance=tol, regressed=c.drop > tol and p_adj < alpha))
    return out
