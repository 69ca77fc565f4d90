"""Score a planned task's completions: per-item scores, metric means, 95% intervals and the
provenance every report and baseline records."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from medgate.core.types import Completion, ItemRecord, ScoringConfig, TaskResult
from medgate.metrics.stats import bootstrap_ci
from medgate.pipeline.plan import TaskPlan
from medgate.tasks.base import TaskSpec


def score(plan: TaskPlan, completions: Sequence[Completion], model: str,
          scoring: ScoringConfig | None = None) -> TaskResult:
    """Score every item; items the engine could not run are kept as errors, not dropped silently."""
    if len(completions) != len(plan.items):
        raise ValueError(f"{len(completions)} completions for {len(plan.items)} items")
    ok = [i for i, c in enumerate(completions) if not c.error]
    batch = plan.task.score_all([completions[i].text for i in ok], [plan.items[i] for i in ok], scoring or ScoringConfig())
    scores_of = dict(zip(ok, batch.per_item))
    records = [
        ItemRecord(
            id=sample.id, scores=scores_of.get(i, {}), prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens, output=completion.text, error=completion.error,
            meta=dict(sample.meta),
        )
        for i, (sample, completion) in enumerate(zip(plan.items, completions))
    ]
    notes = dict(batch.notes)
    totals = sum_meta([r.meta for r in records])
    if plan.task.notes is not None and totals:
        notes.update(plan.task.notes(totals))
    provenance: dict[str, Any] = {
        "dataset": str(plan.data_path),
        "dataset_hash": plan.dataset_hash,
        "prompt_version": plan.task.prompt_version,
        **plan.prompts.provenance(plan.task.name),
        "fewshot_ids": [s.id for s in plan.shots],
        "n_items": len(plan.items),
        "decoding": plan.params.describe(),
        "notes": notes,
    }
    if totals:
        provenance["item_totals"] = totals
    return TaskResult(
        task=plan.task.name, model=model, metrics=plan.task.aggregate(batch.per_item), items=records,
        not_computed=dict(batch.not_computed), provenance=provenance, intervals=intervals(plan.task, batch.per_item),
    )


def intervals(task: TaskSpec, per_item: Sequence[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """A seeded 95% bootstrap interval over items for every metric that has values (within the
    metric's bounds when every item scored alike, so one item never shows a point)."""
    out = {}
    for metric, spec in task.metrics.items():
        values = [scores[metric] for scores in per_item if metric in scores]
        if values:
            out[metric] = bootstrap_ci(values, seed=0, bounds=spec.bounds)
    return out


def sum_meta(metas: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Totals of numeric per-item facts and counts of true flags (e.g. prompts whose answer was cut)."""
    out: dict[str, int] = {}
    for meta in metas:
        for key, value in meta.items():
            if isinstance(value, bool):
                out[key] = out.get(key, 0) + int(value)
            elif isinstance(value, int):
                out[key] = out.get(key, 0) + value
    return out
