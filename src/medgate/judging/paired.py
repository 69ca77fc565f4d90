"""Item-by-item comparison of a candidate with a reference (a baseline or another model). Pure:
no files, no pytest.

Per metric: the paired difference with its 95% interval (0/1 metrics: Newcombe's score interval
for paired proportions with the exact McNemar test; continuous metrics: a seeded paired
bootstrap interval, widened by the metric's bounds when every item differs alike, with the
sign-flip permutation test), the items that flipped, and a p-value Holm-adjusted across the
comparison's family (every compared metric of the model's selected tasks). Two rules turn that into a verdict:
- significant_drop (the default for --baseline): the metric fails when its drop exceeds the margin
  (the tolerance) and is significant;
- non_inferiority (--against, or regression = "non_inferiority"): better (a significant gain),
  not worse (the interval's worst end within the margin), worse (the whole interval beyond the
  margin, and significant) or inconclusive (the data cannot tell: never a pass by default).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from medgate.core.comparable import PAIRED_FIELDS, conditions, differences
from medgate.core.errors import BaselineError
from medgate.core.outcome import Comparison
from medgate.core.types import TaskResult
from medgate.metrics.stats import PairedDiff, holm, items_to_decide, paired_bootstrap, paired_proportions
from medgate.tasks.base import TaskSpec

ALPHA = 0.05
RULES = ("significant_drop", "non_inferiority")
MAX_FLIPS = 20  # ids of the largest drops and gains of a continuous metric

Scores = Mapping[str, Mapping[str, float]]  # item id -> metric -> score
# What must agree for two runs to be compared item by item (the model may differ).
COMPARABLE = ("dataset_hash", "prompt_version", "decoding")


class BaselineMismatch(BaselineError):
    """The reference was measured on other items, data or prompts: comparing would mislead."""


@dataclass(frozen=True)
class Reference:
    """One task's per-item scores to compare with, and where they come from."""

    label: str  # "baseline v1", "model meditron-7b", "meditron-7b@release-1.2"
    provenance: Mapping[str, Any]
    scores: Scores


def reference_of(result: TaskResult, label: str) -> Reference:
    """A model's result of this run as a reference (its items that could be scored)."""
    return Reference(label, result.provenance, {i.id: i.scores for i in result.items if not i.error})


def compare(reference: Reference, result: TaskResult, task: TaskSpec, *, seed: int = 0) -> list[Comparison]:
    """Unjudged comparisons of a result with a reference of the same data, prompts and items.

    When both come from the same model (same weights, engine, settings and chat template: the
    same generation identity) and scored every item alike, the difference is zero on every
    possible item, not only on the ones scored: its interval is the point 0. Otherwise the
    interval reflects the sample of items."""
    check_comparable(reference, result)
    identity = result.provenance.get("generation_identity")
    identical = identity is not None and identity == reference.provenance.get("generation_identity")
    return compare_scores(task, reference.scores, {i.id: i.scores for i in result.items}, against=reference.label,
                          seed=seed, identical=identical)


def check_comparable(reference: Reference, result: TaskResult) -> None:
    """Raise BaselineMismatch unless the reference saw the same data, prompts and items."""
    label = f"{result.model} {result.task}"
    found = differences(conditions(result.provenance), conditions(reference.provenance), fields=PAIRED_FIELDS)
    if found:
        raise BaselineMismatch(f"{label}: this run differs from {reference.label}: {'; '.join(found)}; compare runs "
                               "of the same data and prompts, or save a new baseline")
    ref_ids, run_ids = set(reference.scores), {item.id for item in result.items}
    if ref_ids != run_ids:
        raise BaselineMismatch(
            f"{label}: {reference.label} scored {len(ref_ids)} items, this run {len(run_ids)} "
            f"({len(ref_ids - run_ids)} only in the reference, {len(run_ids - ref_ids)} only in this run); "
            f"use the same --limit and data"
        )


def compare_scores(task: TaskSpec, reference: Scores, candidate: Scores, *, against: str,
                   seed: int = 0, identical: bool = False) -> list[Comparison]:
    """Unjudged comparisons of every metric both sides scored, paired by item id. ``identical``:
    both sides are the same model, so the difference is exactly zero."""
    out = []
    for name, spec in task.metrics.items():
        ids = [i for i in candidate if name in candidate[i] and name in reference.get(i, {})]
        if not ids:
            continue
        before = [float(reference[i][name]) for i in ids]
        after = [float(candidate[i][name]) for i in ids]
        same = identical and before == after  # the same model may still answer differently between
        if same:                              # fresh runs (batching on vLLM): then the data decide
            diff = PairedDiff(0.0, 0.0, 0.0, 1.0)
        elif spec.binary:
            diff = paired_proportions(before, after)
        else:
            diff = paired_bootstrap(before, after, seed=seed, bounds=spec.bounds)
        sign = 1.0 if spec.higher_is_better else -1.0
        # the drop (positive = worse) and its interval, which flips with the metric's direction
        low, high = sorted((-sign * diff.high, -sign * diff.low))
        drops = {i: sign * (b - a) for i, b, a in zip(ids, before, after)}
        if spec.binary:
            worse = [i for i in ids if drops[i] > 0.5]
            better = [i for i in ids if drops[i] < -0.5]
        else:  # the largest drops and gains, largest first
            worse = sorted((i for i in ids if drops[i] > 0), key=lambda i: -drops[i])
            better = sorted((i for i in ids if drops[i] < 0), key=lambda i: drops[i])
        out.append(Comparison(
            task=task.name, metric=name, reference=against, rule="", test="exact McNemar" if spec.binary else "sign-flip",
            n_pairs=len(ids), reference_value=sum(before) / len(ids), candidate_value=sum(after) / len(ids),
            drop=-sign * diff.delta, drop_low=low, drop_high=high, p_value=diff.p_value,
            higher_is_better=spec.higher_is_better, spread=float(np.std(list(drops.values()), ddof=1)) if len(ids) > 1 else 0.0,
            identical=same, n_worse=len(worse), n_better=len(better), flips_worse=tuple(worse if spec.binary else worse[:MAX_FLIPS]),
            flips_better=tuple(better if spec.binary else better[:MAX_FLIPS]),
        ))
    return out


def judge(comparisons: Sequence[Comparison], rule: Callable[[str, str], tuple[str, float]],
          alpha: float = ALPHA) -> list[Comparison]:
    """Holm-adjust across the family and give each comparison its verdict. ``rule(task, metric)``
    is (rule name, margin)."""
    adjusted = holm([c.p_value for c in comparisons])
    out = []
    for c, p_adj in zip(comparisons, adjusted):
        name, margin = rule(c.task, c.metric)
        significant = p_adj < alpha
        if name == "significant_drop":
            fails = c.drop > margin and significant
            out.append(replace(c, rule=name, margin=margin, p_adjusted=p_adj, fails=fails,
                               verdict="regressed" if fails else "no regression"))
            continue
        needed = None
        if c.drop_low > margin and significant:
            verdict = "worse"
        elif c.drop_high < 0 and significant:
            verdict = "better"
        elif c.drop_high <= margin:
            verdict = "not worse"
        else:
            verdict = "inconclusive"
            needed = items_to_decide(-c.drop, c.spread, margin)
        out.append(replace(c, rule=name, margin=margin, p_adjusted=p_adj, verdict=verdict, items_to_decide=needed,
                           fails=verdict in ("worse", "inconclusive")))
    return out
