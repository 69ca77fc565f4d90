"""The task registry: one explicit dict from task id to its TaskSpec. A new task is one module
in this folder and one line here (plus its data)."""

from __future__ import annotations

from medgate.core.errors import ConfigError
from medgate.tasks import longhealth, medisumcode, medisumqa, mednli, meqsum, problem_summary
from medgate.tasks.base import TaskSpec

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


__all__ = ["TASKS", "TaskSpec", "get_task"]
