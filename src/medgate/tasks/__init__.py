"""The task registry: one explicit dict from task id to its TaskSpec."""

from __future__ import annotations

from medgate.tasks import longhealth, medisumcode, medisumqa, mednli, meqsum, problem_summary
from medgate.tasks.base import MetricSpec, TaskSpec

TASKS: dict[str, TaskSpec] = {
    task.name: task
    for task in (mednli.TASK, meqsum.TASK, problem_summary.TASK, medisumqa.TASK, medisumcode.TASK, longhealth.TASK)
}

__all__ = ["TASKS", "MetricSpec", "TaskSpec"]
