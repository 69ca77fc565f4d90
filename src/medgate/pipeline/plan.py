"""Plan a task before any model is involved: load its file, pick the few-shot examples, build
every prompt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medgate.core.errors import DataError, MedgateError, MissingDataFile
from medgate.core.io import file_digest, short_hash
from medgate.core.synthetic import data_source
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
    data_source: str = "user"  # "synthetic": a file medgate ships (by content); else it may hold patient text

    @property
    def params(self) -> GenParams:
        return GenParams(max_tokens=self.task.max_new_tokens)


def data_file(task: TaskSpec, data_dir: Path | None) -> Path:
    """The task's file in ``data_dir`` (its original name, else an accepted alternative), else
    the file its ``path`` names. A named path that does not exist is an error, not a skip: the
    task's author said where the data is."""
    candidates = [data_dir / name for name in (task.filename, *task.alt_filenames)] if data_dir else []
    found = next((p for p in candidates if p.exists()), None)
    if found is not None:
        return found
    if task.path is not None:
        path = Path(task.path)
        if not path.is_file():
            raise DataError(path, f"task {task.name}: its data file (TaskSpec path) "
                            f"{'is not a regular file' if path.exists() else 'does not exist'}")
        return path
    where = candidates[0] if candidates else Path(task.filename)
    raise MissingDataFile(where, f"{task.title} data file not found in the data directory")


def plan_task(task: TaskSpec, data_dir: Path | None, limit: int | None = None,
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
        raise DataError(path, f"task {task.name}: {task.title} data could not be read ({type(exc).__name__}: {exc})") from exc
    digest = file_digest(path)  # one read for the dataset hash and for "is it medgate's own data"
    return TaskPlan(task=task, data_path=path, dataset_hash=short_hash(digest), shots=shots, items=items, chats=chats,
                    prompts=prompts, data_source=data_source(digest))
