"""Plan a task (load, split few-shot, build prompts) and score its completions. No pytest here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from medgate.errors import DataError
from medgate.tasks.base import TaskSpec, split_fewshot
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


def plan_task(task: TaskSpec, data_dir: Path, limit: int | None = None) -> TaskPlan:
    """Load the task's file from ``data_dir``, pick few-shot examples and build every prompt."""
    path = data_dir / task.filename
    if not path.exists():
        raise DataError(path, f"{task.title} data file not found in the data directory")
    samples = task.load_samples(path)
    if len(samples) <= task.fewshot:
        raise DataError(path, f"{len(samples)} items; {task.title} needs more than its {task.fewshot} few-shot examples")
    shots, items = split_fewshot(samples, task.fewshot)
    if limit is not None:
        items = items[:limit]
    chats = [task.build_prompt(sample, shots) for sample in items]
    return TaskPlan(task=task, data_path=path, dataset_hash=dataset_hash(path), shots=shots, items=items, chats=chats)


def score(plan: TaskPlan, completions: Sequence[Completion], model: str) -> TaskResult:
    """Score every item; items the engine could not run are kept as errors, not dropped silently."""
    if len(completions) != len(plan.items):
        raise ValueError(f"{len(completions)} completions for {len(plan.items)} items")
    records: list[ItemRecord] = []
    per_item: list[dict[str, float]] = []
    for sample, completion in zip(plan.items, completions):
        scores = {} if completion.error else plan.task.score_sample(completion.text, sample)
        if not completion.error:
            per_item.append(scores)
        records.append(
            ItemRecord(
                id=sample.id, scores=scores, prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens, output=completion.text, error=completion.error,
            )
        )
    return TaskResult(
        task=plan.task.name,
        model=model,
        metrics=plan.task.aggregate(per_item),
        items=records,
        provenance={
            "dataset": str(plan.data_path),
            "dataset_hash": plan.dataset_hash,
            "prompt_version": plan.task.prompt_version,
            "fewshot_ids": [s.id for s in plan.shots],
            "n_items": len(plan.items),
            "decoding": plan.params.describe(),
        },
    )
