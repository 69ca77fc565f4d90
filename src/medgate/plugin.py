"""The pytest plugin: options, model parametrisation, the per-model session fixture,
scheduling by model under xdist, GPU pinning per worker, verdicts and the run summary."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from medgate import gating
from medgate.config import ModelSpec, Registry, load_registry
from medgate.devices import assign_devices, visible_pool
from medgate.errors import ConfigError, MedgateError
from medgate.paths import PACKAGE_ROOT
from medgate.session import ModelSession, RunSettings
from medgate.tasks.base import ScoringConfig, TaskSpec

MODEL_FIXTURE = "medgate_model"
SUITE_DIR_NAME = "tests_medical"
_REPO_ROOT = PACKAGE_ROOT.parent.parent  # src/medgate -> repository (editable install)


@dataclass
class State:
    registry: Registry
    models: dict[str, ModelSpec]
    settings: RunSettings
    reports_dir: Path
    outcomes: list[dict[str, Any]]


STATE = pytest.StashKey[State]()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("medgate", "medgate: release gate for clinical language models")
    group.addoption("--model", action="append", dest="medgate_models", default=[], metavar="NAME",
                    help="model to evaluate: a name from models.toml, a local path or a hub id (repeatable; "
                         "default: the file's 'default')")
    group.addoption("--models-file", dest="medgate_models_file", default=None, metavar="PATH",
                    help="models registry (default: models.toml in the rootdir, else the repository's)")
    group.addoption("--data-dir", dest="medgate_data_dir", default=None, metavar="DIR",
                    help="folder with the real dataset files under their original names "
                         "(default: the shipped synthetic fixtures)")
    group.addoption("--limit", dest="medgate_limit", type=_positive_int, default=None, metavar="N",
                    help="score at most N items per task (after the few-shot examples)")
    group.addoption("--bertscore-encoder", dest="medgate_bertscore_encoder", default="minilm", metavar="NAME",
                    help="BERTScore encoder: 'minilm' (packaged, offline; default), "
                         "'allenai/scibert_scivocab_uncased' (the paper's, layer 8) or a local model folder")
    group.addoption("--bertscore-layers", dest="medgate_bertscore_layers", type=_positive_int, default=None,
                    metavar="N", help="encoder layer for BERTScore (default: the paper's 8 for SciBERT, else the last)")
    group.addoption("--reports-dir", dest="medgate_reports_dir", default=None, metavar="DIR",
                    help="where reports go (default: reports/ in the rootdir)")


def _models_file(config: pytest.Config) -> Path:
    given = config.getoption("medgate_models_file")
    if given:
        return Path(given).expanduser().resolve()
    local = config.rootpath / "models.toml"
    return local if local.exists() else _REPO_ROOT / "models.toml"


def _fixtures_dir(config: pytest.Config) -> Path:
    local = config.rootpath / "fixtures"
    return local if local.is_dir() else _REPO_ROOT / "fixtures"


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
        registry = load_registry(_models_file(config))
        names = config.getoption("medgate_models") or ([registry.default] if registry.default else [])
        models: dict[str, ModelSpec] = {}
        for name in names:
            spec = registry.resolve(name)
            models.setdefault(spec.name, spec)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    data_dir_opt = config.getoption("medgate_data_dir")
    if data_dir_opt:
        data_dir = Path(data_dir_opt).expanduser().resolve()
        if not data_dir.is_dir():
            raise pytest.UsageError(f"--data-dir {data_dir}: not a directory")
        source = "user"
    else:
        data_dir, source = _fixtures_dir(config), "synthetic"
    reports_opt = config.getoption("medgate_reports_dir")
    reports_dir = Path(reports_opt).resolve() if reports_opt else config.rootpath / "reports"
    config.stash[STATE] = State(
        registry=registry, models=models,
        settings=RunSettings(
            data_dir=data_dir, data_source=source, limit=config.getoption("medgate_limit"),
            scoring=ScoringConfig(config.getoption("medgate_bertscore_encoder"), config.getoption("medgate_bertscore_layers")),
        ),
        reports_dir=reports_dir, outcomes=[],
    )
    _place_on_devices(config, list(models.values()))
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(_OutcomeCollector(config.stash[STATE]), "medgate-outcomes")
    if _runs_medical_suite(config) and getattr(config.option, "allure_report_dir", "unset") is None:
        results = reports_dir / "allure-results"
        if not hasattr(config, "workerinput"):
            # Cleared here by the controller: --clean-alluredir races under xdist.
            shutil.rmtree(results, ignore_errors=True)
        config.option.allure_report_dir = str(results)


def _place_on_devices(config: pytest.Config, models: list[ModelSpec]) -> None:
    """Pin each xdist worker to its own GPUs before anything touches CUDA."""
    per_worker = max((m.tensor_parallel_size for m in models), default=1)
    pool = visible_pool()
    try:
        if hasattr(config, "workerinput"):
            index = int(str(config.workerinput["workerid"]).removeprefix("gw"))
            devices = assign_devices(index, int(config.workerinput["workercount"]), per_worker, pool)
            if devices:
                os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
        else:
            workers = getattr(config.option, "numprocesses", None)
            n = workers if isinstance(workers, int) and workers > 0 else 1
            assign_devices(0, n, per_worker, pool)  # fail early when there are too few GPUs
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") == "each":
        return None
    from medgate.scheduling import ModelScheduling

    return ModelScheduling(config, log, model_ids=list(config.stash[STATE].models))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if MODEL_FIXTURE in metafunc.fixturenames:
        names = list(metafunc.config.stash[STATE].models)
        metafunc.parametrize(MODEL_FIXTURE, names, indirect=True, scope="session", ids=names)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and MODEL_FIXTURE in callspec.params:
            # For users who pass --dist loadgroup; our own scheduler does not need it.
            item.add_marker(pytest.mark.xdist_group(callspec.params[MODEL_FIXTURE]))


@pytest.fixture(scope="session")
def medgate_model(request: pytest.FixtureRequest) -> Iterator[ModelSession]:
    """The selected model's session: its engine loads on first use, once per worker."""
    state = request.config.stash[STATE]
    spec = state.models[request.param]
    capman = request.config.pluginmanager.getplugin("capturemanager")
    quiet = capman.global_and_fixture_disabled if capman is not None else None
    session = ModelSession(spec, state.settings, quiet) if quiet else ModelSession(spec, state.settings)
    yield session
    session.close()


class TaskGate:
    """A task's result for one model, computed during fixture setup (so a data or engine
    failure shows as an error of the test, not a failure), and the gate on each metric."""

    def __init__(self, request: pytest.FixtureRequest, session: ModelSession, task: TaskSpec) -> None:
        self.request = request
        self.session = session
        self.task = task
        self.result = session.result(task)

    def gate(self, metric: str) -> gating.Verdict:
        if metric not in self.task.metrics:
            raise ConfigError(f"{self.task.name} has no metric {metric!r} (known: {', '.join(self.task.metrics)})")
        threshold = self.session.spec.threshold(self.task.name, metric)
        verdict = gating.check(self.result, self.task.metrics[metric], threshold)
        _record(self.request, self.result, self.task, metric, verdict)
        if verdict.status == "fail":
            pytest.fail(verdict.message, pytrace=False)
        if verdict.status == "error":
            raise MedgateError(verdict.message)
        if verdict.status in ("no_threshold", "not_computed"):
            pytest.skip(verdict.message)
        return verdict


@pytest.fixture
def medgate_task(request: pytest.FixtureRequest, medgate_model: ModelSession) -> TaskGate:
    """The ``TASK`` of the requesting test module, run on the parametrised model (once per model)."""
    task = getattr(request.module, "TASK", None)
    if not isinstance(task, TaskSpec):
        raise ConfigError(f"{request.module.__name__}: medgate_task needs a module-level TASK (a TaskSpec)")
    return TaskGate(request, medgate_model, task)


def _record(request: pytest.FixtureRequest, result: Any, task: TaskSpec, metric: str, verdict: gating.Verdict) -> None:
    from medgate.reporting.allure import record_test

    outcome = {
        "model": result.model, "task": task.name, "metric": metric, "status": verdict.status,
        "value": verdict.value, "threshold": verdict.threshold,
        "higher_is_better": task.metrics[metric].higher_is_better, "message": verdict.message,
        "provenance": {k: v for k, v in result.provenance.items() if k != "fewshot_ids"},
    }
    request.node.user_properties.append(("medgate", json.dumps(outcome, default=str)))
    details = {**outcome, "per_item": [
        {"id": item.id, "scores": dict(item.scores), "error": item.error} for item in result.items
    ]}
    record_test(
        model=result.model, task=task.name, metric=metric, verdict=asdict(verdict), details=details,
        run_specific={"data_dir": str(result.provenance.get("dataset", "")),
                      "device": str(result.provenance.get("device", "")),
                      "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "")},
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    # Our own errors already say what and where: one line, no traceback dump.
    if call.excinfo is not None and call.excinfo.errisinstance(MedgateError):
        report.longrepr = f"{call.excinfo.typename}: {call.excinfo.value}"
    return report


class _OutcomeCollector:
    """Gathers verdicts from test reports on the controller (xdist ships user_properties back)."""

    def __init__(self, state: State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == "medgate" and report.when == "call":
                self.state.outcomes.append(json.loads(value))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or STATE not in config.stash:
        return
    state = config.stash[STATE]
    if not state.outcomes:
        return
    from medgate.reporting.summary import environment_properties, write_summary

    write_summary(state.reports_dir, state.outcomes)
    allure_dir = getattr(config.option, "allure_report_dir", None)
    if allure_dir:
        from medgate.reporting.allure import write_environment

        write_environment(allure_dir, environment_properties(state.outcomes))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if STATE not in config.stash or not config.stash[STATE].outcomes:
        return
    from medgate.reporting.summary import verdict_table

    terminalreporter.section("medgate verdicts")
    for line in verdict_table(config.stash[STATE].outcomes):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"summary: {config.stash[STATE].reports_dir / 'summary.md'}")
