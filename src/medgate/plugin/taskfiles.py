"""Task files as tests: ``<name>.task.toml`` is collected like a clinical test module with
``TASK`` built from the file and one test per metric and model (README, "Tasks without Python")."""

from __future__ import annotations

import types
from typing import Any

import pytest

from medgate.core.errors import MedgateError
from medgate.tasks.taskfile import load_task_file


class TaskFileModule(pytest.Module):
    """A pytest module whose object is built from the task file instead of imported: the same
    fixtures, parametrisation, -k selection and reports as a Python task module."""

    def _getobj(self) -> types.ModuleType:
        try:
            task = load_task_file(self.path)
        except MedgateError as exc:  # one line naming the file, the key and its line
            raise self.CollectError(f"{type(exc).__name__}: {exc}") from None
        module = types.ModuleType(f"taskfile_{task.name}")
        module.__file__ = str(self.path)
        module.TASK = task  # type: ignore[attr-defined]
        def test(medgate_task: Any, metric: str) -> None:  # a new function per file: marks live on it
            medgate_task.gate(metric)

        test.__name__ = test.__qualname__ = f"test_{task.name}"
        setattr(module, test.__name__, pytest.mark.parametrize("metric", task.metric_names)(test))
        return module
