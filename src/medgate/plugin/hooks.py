"""The pytest hooks and fixtures of medgate (the pytest11 entry point): options, model
parametrisation, the per-model session fixture, scheduling by model under xdist, GPU pinning
per worker, data-parallel generation (a worker plugin; the controller's progress bar), and
one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from medgate.core.errors import ConfigError, MedgateError, MissingDataFile
from medgate.models.spec import ModelSpec
from medgate.plugin.dataparallel import ShardWorker
from medgate.plugin.devices import place_worker
from medgate.plugin.options import add_options, read_run_config
from medgate.plugin.progress import GenerationProgress
from medgate.plugin.state import OUTCOME_PROPERTY, STATE, Controller, GateKey, RunState, quiet_capture
from medgate.plugin.taskgate import ModelGate, PairGate, TaskGate, error_outcome, skipped_outcome
from medgate.tasks.base import TaskSpec

MODEL_FIXTURE = "medgate_model"
SUITE_DIR_NAME = "tests_medical"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _runs_medical_suite(config: pytest.Config) -> bool:
    for arg in config.args:
        path = Path(str(arg).split("::")[0])
        if SUITE_DIR_NAME in (config.invocation_params.dir / path).resolve().parts:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "medgate_task(name): a clinical task test of medgate")
    try:
        run_config = read_run_config(config)
        state = RunState(run_config)
        against = run_config.against
        generated = [*run_config.models.values(), *([against.spec] if against and against.baseline is None else [])]
        place_worker(config, generated)  # a worker may generate the reference of --against too
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[STATE] = state
    settings = run_config.settings
    if _is_worker(config):
        config.pluginmanager.register(ShardWorker(config, state), "medgate-shard-worker")
    else:
        config.pluginmanager.register(Controller(state, _runs_medical_suite(config)), "medgate-controller")
        if settings.cache_path is not None and not settings.rejudge:
            config.pluginmanager.register(GenerationProgress(settings.cache_path), "medgate-progress")
    if _runs_medical_suite(config) and getattr(config.option, "allure_report_dir", "unset") is None:
        results = run_config.reports_dir / "allure-results"
        if not _is_worker(config):
            # Cleared here by the controller: --clean-alluredir races under xdist.
            shutil.rmtree(results, ignore_errors=True)
        config.option.allure_report_dir = str(results)


def pytest_report_header(config: pytest.Config) -> str | None:
    workers = getattr(config.option, "numprocesses", None)
    state = config.stash[STATE]
    if isinstance(workers, int) and workers > len(state.config.models) and state.config.settings.cache_path is None:
        return ("medgate: --no-cache: each model runs on one worker (splitting a model's prompts over "
                "workers needs the generation cache)")
    return None


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") == "each":
        return None
    from medgate.plugin.scheduling import ModelScheduling

    # A comparison's tests run beside its candidate's own tests (they share its results).
    scopes = {test_id: key.model for test_id, key in config.stash[STATE].keys.items()}
    return ModelScheduling(config, log, scopes=scopes)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if MODEL_FIXTURE in metafunc.fixturenames:
        # Each model on its own criteria, and with --against each candidate against the reference
        # (ids "<model>" and "<model>-vs-<reference>", selectable with -k).
        ids = list(metafunc.config.stash[STATE].keys)
        metafunc.parametrize(MODEL_FIXTURE, ids, indirect=True, scope="session", ids=ids)


def _module_task(item: Any) -> TaskSpec | None:
    task = getattr(getattr(item, "module", None), "TASK", None)
    return task if isinstance(task, TaskSpec) else None


@pytest.hookimpl(trylast=True)  # after -k/-m deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE]
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or MODEL_FIXTURE not in callspec.params:
            continue
        key = state.keys[callspec.params[MODEL_FIXTURE]]
        # For users who pass --dist loadgroup; our own scheduler does not need it.
        item.add_marker(pytest.mark.xdist_group(key.model))
        task = _module_task(item)
        if task is not None:
            # Holm's correction runs over every metric of the key's selected tasks.
            state.selected.setdefault(key, {})[task.name] = task


def _model_gate(config: pytest.Config, spec: ModelSpec) -> ModelGate:
    """A model's gate, once per process: its own tests and its comparisons share one run, and it
    lives until the session ends (a parametrised session fixture is torn down between params)."""
    state = config.stash[STATE]
    if spec.name not in state.gates:
        state.gates[spec.name] = ModelGate(state.model_run(spec.name, quiet_capture(config)), state)
        config.add_cleanup(state.gates[spec.name].close)
    return state.gates[spec.name]


@pytest.fixture(scope="session")
def medgate_model(request: pytest.FixtureRequest) -> ModelGate | PairGate:
    """The gate of a test's parameter: a model (its engine loads on first use, once per worker),
    or a candidate against the reference of --against."""
    state = request.config.stash[STATE]
    key = state.keys[request.param]
    gate = _model_gate(request.config, state.config.models[key.model])
    against = state.config.against
    if not key.compared or against is None:
        return gate
    reference = None if against.baseline else _model_gate(request.config, against.spec)
    return PairGate(gate, against, reference, state)


def _asked_for(config: pytest.Config, task: TaskSpec, module_file: str) -> bool:
    """Did the user name this task (its test file, or its name in -k)? Then a missing file is an error."""
    name = Path(module_file).name
    in_args = any(Path(str(arg).split("::")[0]).name == name for arg in config.invocation_params.args)
    return in_args or task.name in (config.getoption("keyword") or "")


@pytest.fixture
def medgate_task(request: pytest.FixtureRequest, medgate_model: ModelGate | PairGate) -> TaskGate:
    """The ``TASK`` of the requesting test module, run on the parametrised model (once per model)."""
    task = _module_task(request)
    if task is None:
        raise ConfigError(f"{request.module.__name__}: medgate_task needs a module-level TASK (a TaskSpec)")
    state = request.config.stash[STATE]
    key = state.keys[request.node.callspec.params[MODEL_FIXTURE]]
    try:
        return TaskGate(request, medgate_model, key, task)
    except MissingDataFile as exc:
        if _asked_for(request.config, task, str(request.module.__file__)):
            raise
        outcome = skipped_outcome(key.model, task, request.node.callspec.params.get("metric", "?"), str(exc),
                                  _against_label(state, key))
        request.node.user_properties.append((OUTCOME_PROPERTY, outcome.to_json()))
        pytest.skip(f"{exc} (run its test file or -k {task.name} to make this an error)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    # Our own errors already say what and where: one line, no traceback dump.
    if call.excinfo is not None and call.excinfo.errisinstance(MedgateError):
        report.longrepr = f"{call.excinfo.typename}: {call.excinfo.value}"
    recorded = any(name == OUTCOME_PROPERTY for name, _ in report.user_properties)
    if report.failed and not recorded and call.excinfo is not None:
        _record_error(item, report, call.excinfo)
    return report


def _record_error(item: pytest.Item, report: pytest.TestReport, excinfo: Any) -> None:
    """A test that errored before its verdict (data, engine, baseline) still reaches the summary."""
    callspec = getattr(item, "callspec", None)
    task = _module_task(item)
    if callspec is None or MODEL_FIXTURE not in callspec.params or task is None:
        return
    state = item.config.stash[STATE]
    key = state.keys[callspec.params[MODEL_FIXTURE]]
    outcome = error_outcome(key.model, task, callspec.params.get("metric", "?"), f"{excinfo.typename}: {excinfo.value}",
                            _against_label(state, key))
    report.user_properties.append((OUTCOME_PROPERTY, outcome.to_json()))


def _against_label(state: RunState, key: GateKey) -> str | None:
    against = state.config.against
    return against.label if key.compared and against is not None else None
