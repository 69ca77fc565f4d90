"""The pytest plugin: options, model parametrisation, the per-model session fixture,
scheduling by model under xdist, GPU pinning per worker, verdicts and the run summary."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from medgate.baseline import check_name
from medgate.config import ModelSpec, load_registry
from medgate.devices import assign_devices, visible_pool
from medgate.errors import ConfigError, MedgateError, MissingDataFile
from medgate.gate import STATE, State, TaskGate
from medgate.paths import PACKAGE_ROOT, generations_db
from medgate.session import ModelSession, RunSettings
from medgate.tasks.base import ScoringConfig, TaskSpec

MODEL_FIXTURE = "medgate_model"
SUITE_DIR_NAME = "tests_medical"
_REPO_ROOT = PACKAGE_ROOT.parent.parent  # src/medgate -> repository (editable install)


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
    group.addoption("--no-cache", dest="medgate_no_cache", action="store_true",
                    help="do not read or write the generation cache")
    group.addoption("--chunk-size", dest="medgate_chunk_size", type=_positive_int, default=1024, metavar="N",
                    help="prompts per engine call; each finished chunk is cached (default 1024)")
    group.addoption("--rejudge", dest="medgate_rejudge", action="store_true",
                    help="recompute every verdict from stored generations; never load a model")
    group.addoption("--save-baseline", dest="medgate_save_baseline", default=None, metavar="NAME",
                    help="store this run's per-item scores and provenance as baseline NAME")
    group.addoption("--baseline", dest="medgate_baseline", default=None, metavar="NAME",
                    help="compare this run item by item with baseline NAME; a significant drop beyond the "
                         "tolerance fails the metric")
    group.addoption("--baselines-dir", dest="medgate_baselines_dir", default=None, metavar="DIR",
                    help="where baselines live (default: <reports-dir>/baselines)")
    group.addoption("--attach-samples", dest="medgate_attach_samples", action="store_true",
                    help="attach per-item prompts and outputs to the report for user data too (they may hold "
                         "credentialed patient text; shipped synthetic data is always attached)")
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
    if config.getoption("medgate_rejudge") and config.getoption("medgate_no_cache"):
        raise pytest.UsageError("--rejudge reads the generation cache: it cannot be combined with --no-cache")
    data_dir_opt = config.getoption("medgate_data_dir")
    if data_dir_opt:
        data_dir = Path(data_dir_opt).expanduser().resolve()
        if not data_dir.is_dir():
            raise pytest.UsageError(f"--data-dir {data_dir}: not a directory")
        # The shipped fixtures named explicitly are still synthetic; anything else may be credentialed.
        source = "synthetic" if data_dir == _fixtures_dir(config).resolve() else "user"
    else:
        data_dir, source = _fixtures_dir(config), "synthetic"
    reports_opt = config.getoption("medgate_reports_dir")
    reports_dir = Path(reports_opt).resolve() if reports_opt else config.rootpath / "reports"
    baselines_opt = config.getoption("medgate_baselines_dir")
    try:
        save_name = config.getoption("medgate_save_baseline")
        compare_name = config.getoption("medgate_baseline")
        for name in (save_name, compare_name):
            if name:
                check_name(name)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[STATE] = State(
        registry=registry, models=models,
        settings=RunSettings(
            data_dir=data_dir, data_source=source, limit=config.getoption("medgate_limit"),
            scoring=ScoringConfig(config.getoption("medgate_bertscore_encoder"), config.getoption("medgate_bertscore_layers")),
            cache_path=None if config.getoption("medgate_no_cache") else generations_db(),
            chunk_size=config.getoption("medgate_chunk_size"),
            rejudge=config.getoption("medgate_rejudge"),
        ),
        reports_dir=reports_dir, outcomes=[],
        baselines_dir=Path(baselines_opt).resolve() if baselines_opt else reports_dir / "baselines",
        save_baseline=save_name, baseline=compare_name,
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
    per_worker = max((m.gpus_per_engine for m in models), default=0)
    if per_worker == 0:  # fake, server or Ray-placed models: nothing to pin on this node
        return
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


@pytest.hookimpl(trylast=True)  # after -k/-m deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE]
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or MODEL_FIXTURE not in callspec.params:
            continue
        model = callspec.params[MODEL_FIXTURE]
        # For users who pass --dist loadgroup; our own scheduler does not need it.
        item.add_marker(pytest.mark.xdist_group(model))
        task = getattr(getattr(item, "module", None), "TASK", None)
        if isinstance(task, TaskSpec):
            # Holm's correction runs over every metric of the model's selected tasks.
            state.selected.setdefault(model, {})[task.name] = task
            reason = state.models[model].expected_failures.get(task.name)
            if reason:
                item.add_marker(pytest.mark.xfail(reason=f"known gap (models.toml): {reason}"))


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


def _asked_for(config: pytest.Config, task: TaskSpec, module_file: str) -> bool:
    """Did the user name this task (its test file, or its name in -k)? Then a missing file is an error."""
    name = Path(module_file).name
    in_args = any(Path(str(arg).split("::")[0]).name == name for arg in config.invocation_params.args)
    return in_args or task.name in (config.getoption("keyword") or "")


@pytest.fixture
def medgate_task(request: pytest.FixtureRequest, medgate_model: ModelSession) -> TaskGate:
    """The ``TASK`` of the requesting test module, run on the parametrised model (once per model)."""
    task = getattr(request.module, "TASK", None)
    if not isinstance(task, TaskSpec):
        raise ConfigError(f"{request.module.__name__}: medgate_task needs a module-level TASK (a TaskSpec)")
    try:
        return TaskGate(request, medgate_model, task)
    except MissingDataFile as exc:
        if _asked_for(request.config, task, str(request.module.__file__)):
            raise
        pytest.skip(f"{exc} (run its test file or -k {task.name} to make this an error)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    # Our own errors already say what and where: one line, no traceback dump.
    if call.excinfo is not None and call.excinfo.errisinstance(MedgateError):
        report.longrepr = f"{call.excinfo.typename}: {call.excinfo.value}"
    recorded = any(name == "medgate" for name, _ in report.user_properties)
    if report.failed and not recorded and call.excinfo is not None:
        _record_error(item, report, call.excinfo)
    return report


def _record_error(item: pytest.Item, report: pytest.TestReport, excinfo: Any) -> None:
    """A test that errored before its verdict (data, engine, baseline) still reaches the summary."""
    callspec = getattr(item, "callspec", None)
    task = getattr(getattr(item, "module", None), "TASK", None)
    if callspec is None or MODEL_FIXTURE not in callspec.params or not isinstance(task, TaskSpec):
        return
    metric = str(callspec.params.get("metric", "?"))
    outcome = {"model": callspec.params[MODEL_FIXTURE], "task": task.name, "metric": metric, "status": "error",
               "value": None, "low": None, "high": None, "threshold": None, "comparison": None,
               "higher_is_better": task.metrics[metric].higher_is_better if metric in task.metrics else True,
               "message": f"{excinfo.typename}: {excinfo.value}", "provenance": {}}
    report.user_properties.append(("medgate", json.dumps(outcome, default=str)))


class _OutcomeCollector:
    """Gathers verdicts from test reports on the controller (xdist ships user_properties back)."""

    def __init__(self, state: State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == "medgate" and (report.when == "call" or (report.when == "setup" and report.failed)):
                outcome = json.loads(value)
                if getattr(report, "wasxfail", None):  # a known gap from models.toml
                    outcome.update(status="known_gap", message=f"{outcome['message']} [{report.wasxfail}]")
                self.state.outcomes.append(outcome)


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or STATE not in config.stash:
        return
    state = config.stash[STATE]
    if not state.outcomes:
        return
    from medgate.reporting.charts import model_chart
    from medgate.reporting.summary import environment_properties, write_summary
    from medgate.reporting.table import store_run, write_models_table

    write_summary(state.reports_dir, state.outcomes)
    for model in sorted({o["model"] for o in state.outcomes}):
        model_chart(model, state.outcomes, state.reports_dir / "charts" / f"{model}.png")
    store_run(state.reports_dir, state.outcomes)
    write_models_table(state.reports_dir)
    allure_dir = getattr(config.option, "allure_report_dir", None)
    if allure_dir:
        from medgate.reporting.allure import write_run_files

        write_run_files(allure_dir, environment_properties(state.outcomes), os.environ)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if STATE not in config.stash or not config.stash[STATE].outcomes:
        return
    from medgate.reporting.summary import verdict_table

    terminalreporter.section("medgate verdicts")
    for line in verdict_table(config.stash[STATE].outcomes):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"summary: {config.stash[STATE].reports_dir / 'summary.md'}")
