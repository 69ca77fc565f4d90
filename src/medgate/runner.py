"""Plan a task (load, split few-shot, build prompts) and score its completions. No pytest here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from medgate.errors import DataError, MissingDataFile
from medgate.metrics.stats import bootstrap_ci
from medgate.tasks.base import PromptContext, ScoringConfig, TaskSpec, split_fewshot
from medgate.types import Chat, Completion, GenParams, ItemRecord, Sample, TaskResult


@dataclass(frozen=True)
class TaskPlan:
    """Everything needed to generate and score one task, before any model is involved."""

    task: TaskSpec
    data_path: Path
    dataset_hash: str
    shots: list[Sample]
    items: list[Sample]
    chats: list[Chat]

    @property
    def params(self) -> GenParams:
        return GenParams(max_tokens=self.task.max_new_tokens)


def dataset_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()[:20]


def plan_task(task: TaskSpec, data_dir: Path, limit: int | None = None,
              context: PromptContext | None = None) -> TaskPlan:
    """Load the task's file from ``data_dir``, pick few-shot examples and build every prompt.

    ``limit`` caps the scored samples (LongHealth: questions, each of which gives several prompts).
    """
    candidates = [data_dir / name for name in (task.filename, *task.alt_filenames)]
    path = next((p for p in candidates if p.exists()), candidates[0])
    if not path.exists():
        raise MissingDataFile(path, f"{task.title} data file not found in the data directory")
    samples = task.load_samples(path)
    if len(samples) <= task.fewshot:
        raise DataError(path, f"{len(samples)} items; {task.title} needs more than its {task.fewshot} few-shot examples")
    shots, items = split_fewshot(samples, task.fewshot)
    if limit is not None:
        items = items[:limit]
    if task.prepare is not None:
        if context is None:
            raise ValueError(f"{task.name}: prompt building needs the model's tokenizer")
        items = task.prepare(items, context)
    chats = [task.build_prompt(sample, shots) for sample in items]
    return TaskPlan(task=task, data_path=path, dataset_hash=dataset_hash(path), shots=shots, items=items, chats=chats)


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
            meta=dict(sample.fields.get("packing", {})),
        )
        for i, (sample, completion) in enumerate(zip(plan.items, completions))
    ]
    provenance: dict[str, Any] = {
        "dataset": str(plan.data_path),
        "dataset_hash": plan.dataset_hash,
        "prompt_version": plan.task.prompt_version,
        "fewshot_ids": [s.id for s in plan.shots],
        "n_items": len(plan.items),
        "decoding": plan.params.describe(),
        **batch.notes,
    }
    packing = summarize_meta([r.meta for r in records])
    if packing:
        provenance["packing"] = packing
    return TaskResult(
        task=plan.task.name, model=model, metrics=plan.task.aggregate(batch.per_item), items=records,
        not_computed=dict(batch.not_computed), provenance=provenance, intervals=intervals(plan.task, batch.per_item),
    )


def intervals(task: TaskSpec, per_item: Sequence[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """A seeded 95% bootstrap interval over items for every metric that has values."""
    out = {}
    for metric in task.metrics:
        values = [scores[metric] for scores in per_item if metric in scores]
        if values:
            out[metric] = bootstrap_ci(values, seed=0)
    return out


def summarize_meta(metas: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Totals of numeric per-item facts and counts of true flags (e.g. prompts whose answer was cut)."""
    out: dict[str, int] = {}
    for meta in metas:
        for key, value in meta.items():
            if isinstance(value, bool):
                out[key] = out.get(key, 0) + int(value)
            elif isinstance(value, int):
                out[key] = out.get(key, 0) + value
    return out
