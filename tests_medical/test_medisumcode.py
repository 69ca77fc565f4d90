"""MeDiSumCode over every selected model: one test per metric, each gated by models.toml."""

import pytest

from medgate.tasks.medisumcode import TASK  # the task this module gates (read by the medgate_task fixture)


@pytest.mark.parametrize("metric", TASK.metric_names)
def test_medisumcode(medgate_task, metric):
    medgate_task.gate(metric)
