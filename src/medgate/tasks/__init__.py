"""The task registry: one explicit dict from task id to its TaskSpec."""

from __future__ import annotations

from medgate.tasks import mednli
from medgate.tasks.base import MetricSpec, TaskSpec

TASKS: dict[str, TaskSpec] = {
    mednli.TASK.name: mednli.TASK,
}

__all__ = ["TASKS", "MetricSpec", "TaskSpec"]
