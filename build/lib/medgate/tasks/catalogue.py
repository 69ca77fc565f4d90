"""The task catalogue of a run: the built-in CLUE tasks, the tasks installed packages register
under the entry-point group ``medgate.tasks``, and the ``TASK`` of every collected test module.
One name means one task: two different tasks of one name are an error naming both sources."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Iterator, Mapping

from medgate.core.errors import ConfigError
from medgate.tasks.base import TaskSpec

ENTRY_POINT_GROUP = "medgate.tasks"


@dataclass
class Catalogue:
    """Task name -> task, with where each came from (for errors and reports)."""

    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def add(self, task: Any, source: str) -> TaskSpec:
        if not isinstance(task, TaskSpec):
            raise ConfigError(f"{source}: TASK must be a medgate.TaskSpec, got {type(task).__name__}")
        known = self.tasks.get(task.name)
        if known is not None and known is not task and _unresolved(known) != _unresolved(task):
            raise ConfigError(f"two tasks are named {task.name!r}: one in {self.sources[task.name]}, one in {source}; "
                              "rename one of them")
        if known is None:
            self.tasks[task.name] = task
            self.sources[task.name] = source
        return self.tasks[task.name]

    def add_module_task(self, task: Any, module_name: str, module_file: str | None) -> TaskSpec:
        """A test module's TASK, its data ``path`` made absolute against the module's folder."""
        if isinstance(task, TaskSpec) and task.path is not None and module_file is not None:
            path = Path(task.path).expanduser()
            if not path.is_absolute():
                task = replace(task, path=(Path(module_file).resolve().parent / path).resolve())
        return self.add(task, f"module {module_name} ({module_file})" if module_file else f"module {module_name}")

    def __contains__(self, name: object) -> bool:
        return name in self.tasks

    def __getitem__(self, name: str) -> TaskSpec:
        return self.tasks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def metrics(self) -> Mapping[str, Mapping[str, Any]]:
        return {name: task.metrics for name, task in self.tasks.items()}


def _unresolved(task: TaskSpec) -> TaskSpec:
    # The same module imported twice (a relative path made absolute once) is still one task.
    return replace(task, path=None)


def builtin_catalogue(include_installed: bool = True) -> Catalogue:
    """The CLUE tasks, then every installed package's tasks (``medgate.tasks`` entry points,
    each naming a TaskSpec, or a list of them)."""
    from medgate.tasks import TASKS

    catalogue = Catalogue()
    for task in TASKS.values():
        catalogue.add(task, "medgate's built-in tasks")
    if include_installed:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            source = f"entry point {ep.name} = {ep.value} ({ep.dist.name if ep.dist else 'unknown package'})"
            try:
                loaded = ep.load()
            except Exception as exc:  # a broken third-party package must name itself, not crash collection
                raise ConfigError(f"{source}: cannot be loaded ({type(exc).__name__}: {exc})") from None
            for task in loaded if isinstance(loaded, (list, tuple)) else [loaded]:
                catalogue.add(task, source)
    return catalogue
