"""Plan a task before any model is involved: load its file, pick the few-shot examples, build
every prompt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medgate.core.errors import DataError, MedgateError, MissingDataFile
from medgate.core.io import file_sha256
from medgate.core.types import Chat, GenParams, PromptContext, Sample
from medgate.tasks.base import TaskSpec, split_fewshot
from medgate.tasks.reference_prompts import PromptSource


@dataclass(frozen=True)
class TaskPlan:
    """Everything needed to generate and score one task."""

    task: TaskSpec
    data_path: Path
    dataset_hash: str
    shots: list[Sample]
    items: list[Sample]
    chats: list[Chat]
    prompts: PromptSource = PromptSource()  # medgate's own, or the reference's (``task`` is then its variant)

    @property
    def params(self) -> GenParams:
        return GenParams(max_tokens=self.task.max_new_tokens)


def data_file(task: TaskSpec, data_dir: Path) -> Path:
    """The task's file in ``data_dir``: its original name, else an accepted alternative."""
    candidates = [data_dir / name for name in (task.filename, *task.alt_filenames)]
    path = next((p for p in candidates if p.exists()), candidates[0])
    if not path.exists():
        raise MissingDataFile(path, f"{task.title} data file not found in the data directory")
    return path


def plan_task(task: TaskSpec, data_dir: Path, limit: int | None = None,
              context: PromptContext | None = None, prompts: PromptSource = PromptSource()) -> TaskPlan:
    """Load the task's file from ``data_dir``, pick few-shot examples and build every prompt.

    ``limit`` caps the scored samples (LongHealth: questions, each of which gives several prompts).
    ``prompts`` picks the prompts: the plan's task is the task as those prompts build it.
    """
    task = task.with_prompts(prompts)
    path = data_file(task, data_dir)
    if task.prepare is not None and context is None:
        raise ValueError(f"{task.name}: prompt building needs the model's tokenizer")
    try:
        samples = task.load_samples(path)
        if len(samples) <= task.fewshot:
            raise DataError(path, f"{len(samples)} items; {task.title} needs more than its {task.fewshot} few-shot examples")
        shots, items = split_fewshot(samples, task.fewshot)
        if limit is not None:
            items = items[:limit]
        if task.prepare is not None:
            items = task.prepare(items, context)  # type: ignore[arg-type]
        chats = [task.build_prompt(sample, shots) for sample in items]
    except MedgateError:
        raise
    except Exception as exc:  # a loader that breaks on odd data must not take other tasks' generation down
        raise DataError(path, f"{task.title} data could not be read ({type(exc).__name__}: {exc})") from exc
    return TaskPlan(task=task, data_path=path, dataset_hash=file_sha256(path), shots=shots, items=items, chats=chats,
                    prompts=prompts)
