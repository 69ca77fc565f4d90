"""The task registry: one explicit dict from task id to its TaskSpec. A new task is one module
in this folder and one line here (plus its data)."""

from __future__ import annotations

from pathlib import Path

from medgate.core.errors import ConfigError
from medgate.tasks import longhealth, medisumcode, medisumqa, mednli, meqsum, problem_summary
from medgate.tasks.base import TaskSpec
from medgate.tasks.reference_prompts import PromptSource, parse_prompt_spec, read_reference

TASKS: dict[str, TaskSpec] = {
    task.name: task
    for task in (mednli.TASK, meqsum.TASK, problem_summary.TASK, medisumqa.TASK, medisumcode.TASK, longhealth.TASK)
}


def get_task(name: str) -> TaskSpec:
    """The registered task of this name (test modules in tests_medical/ take theirs from here)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r} (known: {', '.join(TASKS)})") from None


def load_prompts(spec: str, base: Path) -> PromptSource:
    """The prompts a run uses: ``medgate`` (its own) or ``reference:DIR`` (DIR relative to ``base``),
    whose scripts are read for every task now, so that a problem stops the run before anything loads."""
    try:
        directory = parse_prompt_spec(spec)
    except ValueError as exc:
        raise ConfigError(f"--prompts: {exc}") from None
    if directory is None:
        return PromptSource()
    scripts = {name: task.reference for name, task in TASKS.items() if task.reference is not None}
    return read_reference(base / directory, scripts)


__all__ = ["TASKS", "PromptSource", "TaskSpec", "get_task", "load_prompts"]
