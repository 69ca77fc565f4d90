"""MeQSum over every selected model: one test per metric, each gated by models.toml."""

import pytest

from medgate.tasks import get_task

TASK = get_task("meqsum")  # from the task registry; the medgate_task fixture reads it


@pytest.mark.parametrize("metric", TASK.metric_names)
def test_meqsum(medgate_task, metric):
    medgate_task.gate(metric)
