"""Turning medgate on in a pytest session, and what it does once collection is done. Imported
only when a session asks for medgate (an option, the ini key, the CLUE suite's folder, or a
collected test that uses the ``medgate_model`` fixture), so other projects never load it."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from medgate.core.errors import ConfigError
from medgate.plugin.dataparallel import ShardWorker
from medgate.plugin.devices import place_worker
from medgate.plugin.flags import MODEL_FIXTURE, STATE, USAGE_NODE
from medgate.plugin.options import check_collected, read_run_config
from medgate.plugin.progress import GenerationProgress
from medgate.plugin.state import Controller, RunState
from medgate.tasks.base import TaskSpec
from medgate.tasks.catalogue import builtin_catalogue



def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def activate(config: pytest.Config, *, medical_suite: bool, allure: bool) -> RunState:
    """Read the run's configuration (a usage error on any problem) and register what runs it:
    the shard worker on an xdist worker, the controller (summary, reports) elsewhere."""
    try:
        run_config = read_run_config(config)
        state = RunState(run_config)
        against = run_config.against
        generated = [*run_config.models.values(), *([against.spec] if against and against.generated else [])]
        place_worker(config, generated)  # a worker may generate the reference of --against too
        state.catalogue = builtin_catalogue()
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[STATE] = state
    settings = run_config.settings
    if is_worker(config):
        config.pluginmanager.register(ShardWorker(config, state), "medgate-shard-worker")
    else:
        config.pluginmanager.register(Controller(state, medical_suite), "medgate-controller")
        if settings.cache_path is not None and not settings.rejudge:
            config.pluginmanager.register(GenerationProgress(settings.cache_path), "medgate-progress")
    if allure and getattr(config.option, "allure_report_dir", "unset") is None:
        results = run_config.reports_dir / "allure-results"
        if not is_worker(config):
            # Cleared here by the controller: --clean-alluredir races under xdist.
            shutil.rmtree(results, ignore_errors=True)
        config.option.allure_report_dir = str(results)
    return state


def module_task(state: RunState, item: Any) -> TaskSpec | None:
    """The catalogue's version of an item's module TASK (its data path made absolute)."""
    module = getattr(item, "module", None)
    task = getattr(module, "TASK", None)
    if not isinstance(task, TaskSpec):
        return None
    return state.catalogue.tasks.get(task.name, task)


def collected(config: pytest.Config, items: list[pytest.Item], *, collection_errors: bool = False) -> None:
    """After -k/-m: the catalogue (built-in, installed and every collected module's TASK), each
    selected key's tasks, and the checks that need them. A problem is a usage error; under xdist a
    worker reports it as one failed collection (the controller turns it into exit 4)."""
    state: RunState = config.stash[STATE]
    try:
        seen: set[int] = set()
        for item in items:
            module = getattr(item, "module", None)
            task = getattr(module, "TASK", None)
            if module is None or task is None or id(module) in seen:
                continue
            seen.add(id(module))
            if isinstance(task, TaskSpec):  # anything else: an error of its tests, at setup
                state.catalogue.add_module_task(task, module.__name__, getattr(module, "__file__", None))
        tasks: dict[str, TaskSpec] = {}
        for item in items:
            callspec = getattr(item, "callspec", None)
            if callspec is None or MODEL_FIXTURE not in callspec.params:
                continue
            key = state.keys[callspec.params[MODEL_FIXTURE]]
            # For users who pass --dist loadgroup; our own scheduler does not need it.
            item.add_marker(pytest.mark.xdist_group(key.model))
            task = module_task(state, item)
            if task is not None:
                # Holm's correction runs over every metric of the key's selected tasks.
                state.selected.setdefault(key, {})[task.name] = task
                tasks[task.name] = task
        # A module or task file that failed to collect has its own error; its task's thresholds
        # are then not reported as unknown as well.
        state.criteria = check_collected(state.config, state.catalogue, list(tasks.values()),
                                         check_names=not collection_errors)
    except ConfigError as exc:
        if not is_worker(config):
            raise pytest.UsageError(str(exc)) from None
        config.hook.pytest_collectreport(report=pytest.CollectReport(USAGE_NODE, "failed", f"ConfigError: {exc}", []))
        items[:] = []
