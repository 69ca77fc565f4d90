"""The summary's "Trivial baselines" section: beside each model's value, what answers that ignore
the item (majority, empty, the input echoed) score on the same items, from the results'
provenance ("trivial"). A value no better than the best of them, or a threshold that one of them
would pass, is flagged: such a gate cannot tell a working model from a broken prompt or parser."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from medgate.core.outcome import Outcome
from medgate.tasks.trivial import best_baseline

ORDER = ("majority", "empty", "echo")  # first, in this order; task-specific constants after


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _baselines(o: Outcome) -> Mapping[str, Mapping[str, float]]:
    found: Any = o.provenance.get("trivial")
    return found if isinstance(found, Mapping) else {}


def baseline_names(outcomes: Sequence[Outcome]) -> list[str]:
    names = {name for o in outcomes for name in _baselines(o)}
    return [n for n in ORDER if n in names] + sorted(names - set(ORDER))


def flags(o: Outcome) -> list[str]:
    """What the trivial baselines say of this value and its threshold."""
    best = best_baseline({k: dict(v) for k, v in _baselines(o).items()}, o.metric, o.higher_is_better)
    if best is None:
        return []
    name, value = best

    def no_better(x: float) -> bool:
        return x <= value if o.higher_is_better else x >= value

    out = []
    if o.value is not None and no_better(o.value):
        out.append(f"no better than {name}")
    if o.threshold is not None and no_better(o.threshold):
        out.append(f"threshold passes {name}")
    return out


def trivial_rows(outcomes: Sequence[Outcome]) -> list[list[str]]:
    """One row per model, task and metric that has trivial baselines (comparisons left out)."""
    chosen = [o for o in outcomes if o.against is None and any(o.metric in v for v in _baselines(o).values())]
    names = baseline_names(chosen)
    rows = []
    for o in sorted(chosen, key=lambda o: (o.model, o.task, o.metric)):
        baselines = _baselines(o)
        bound = "-" if o.threshold is None else (">= " if o.higher_is_better else "<= ") + _fmt(o.threshold)
        rows.append([o.model, o.task, o.metric, _fmt(o.value),
                     *(_fmt(baselines.get(n, {}).get(o.metric)) for n in names), bound, "; ".join(flags(o)) or "-"])
    return rows


def trivial_lines(outcomes: Sequence[Outcome]) -> list[str]:
    """The Markdown section; nothing when no result carries trivial baselines."""
    rows = trivial_rows(outcomes)
    if not rows:
        return []
    chosen = [o for o in outcomes if o.against is None]
    header = ["model", "task", "metric", "value", *baseline_names(chosen), "threshold", "flag"]
    return ["", "## Trivial baselines", "",
            "What answers that ignore the item score on this run's items, through the task's own scorer: "
            "majority (one constant answer from the gold), empty, echo (the item's input as its answer). "
            "BERTScore and UMLS are not computed for them (an encoder pass). "
            "A value or threshold at or below the best of them cannot tell a working model from a constant answer.",
            "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]
