"""The pytest hooks and fixtures of medgate (the pytest11 entry point).

Dormant unless asked: installed in an environment, this module is loaded by every pytest
session there, so it imports only pytest and medgate's option definitions. medgate turns on when
a session passes a medgate option, the project's ini sets ``medgate_models_file``, the arguments
point into a ``tests_medical`` folder (the CLUE suite), or collection finds a test that uses the
``medgate_model`` fixture; only then is the rest of medgate imported (plugin/session.py). A
dormant session reads, writes and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from medgate.plugin.flags import MODEL_FIXTURE, OUTCOME_PROPERTY, STATE, USAGE_NODE, add_ini, add_options, asked_for

SUITE_DIR_NAME = "tests_medical"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    add_ini(parser)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _runs_medical_suite(config: pytest.Config) -> bool:
    for arg in config.args:
        path = Path(str(arg).split("::")[0])
        if SUITE_DIR_NAME in (config.invocation_params.dir / path).resolve().parts:
            return True
    return False


def _active(config: pytest.Config) -> bool:
    return STATE in config.stash


def _activate(config: pytest.Config, *, allure: bool = False) -> Any:
    if not _active(config):
        from medgate.plugin.session import activate

        activate(config, medical_suite=_runs_medical_suite(config), allure=allure)
    return config.stash[STATE]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "medgate_task(name): a clinical task test of medgate")
    suite = _runs_medical_suite(config)
    if suite or asked_for(config):
        _activate(config, allure=suite)
    if not _is_worker(config):
        config.pluginmanager.register(_Watcher(config), "medgate-watcher")


class _Watcher:
    """On the controller (or the only process): turns an xdist worker's medgate usage error into
    exit 4, and in a session that did not ask for medgate wakes it when the first medgate verdict
    arrives (a worker found a medgate test). Otherwise it only looks at report properties."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.usage_error = False

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # a usage error found after collection (USAGE_NODE), or while collection woke medgate
        if report.failed and (report.nodeid == USAGE_NODE or str(report.longrepr).startswith("ConfigError: ")):
            self.usage_error = True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not _active(self.config) and any(name == OUTCOME_PROPERTY for name, _ in report.user_properties):
            _activate(self.config)
            controller = self.config.pluginmanager.get_plugin("medgate-controller")
            controller.pytest_runtest_logreport(report)  # registered now: it missed this one

    @pytest.hookimpl(tryfirst=True)  # before the controller, which writes no report after a usage error
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.usage_error:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR


def pytest_report_header(config: pytest.Config) -> str | None:
    if not _active(config):
        return None
    workers = getattr(config.option, "numprocesses", None)
    state = config.stash[STATE]
    if isinstance(workers, int) and workers > len(state.config.models) and state.config.settings.cache_path is None:
        return ("medgate: --no-cache: each model runs on one worker (splitting a model's prompts over "
                "workers needs the generation cache)")
    return None


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if not _active(config) or config.getvalue("dist") == "each":
        return None
    from medgate.plugin.scheduling import ModelScheduling

    # A comparison's tests run beside its candidate's own tests (they share its results).
    scopes = {test_id: key.model for test_id, key in config.stash[STATE].keys.items()}
    return ModelScheduling(config, log, scopes=scopes)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if MODEL_FIXTURE in metafunc.fixturenames:
        # Each model on its own criteria, and with --against each candidate against the reference
        # (ids "<model>" and "<model>-vs-<reference>", selectable with -k).
        try:
            ids = list(_activate(metafunc.config).keys)
        except pytest.UsageError as exc:  # woken by collection: one line on the module, then exit 4
            raise pytest.Collector.CollectError(f"ConfigError: {exc}") from None
        metafunc.parametrize(MODEL_FIXTURE, ids, indirect=True, scope="session", ids=ids)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Any:
    """A task file (``*.task.toml``) is a clinical test module (plugin/taskfiles.py)."""
    if file_path.name.endswith(".task.toml") and len(file_path.name) > len(".task.toml"):
        from medgate.plugin.taskfiles import TaskFileModule

        return TaskFileModule.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(trylast=True)  # after -k/-m deselection
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if _active(config):
        from medgate.plugin.session import collected

        collected(config, items, collection_errors=session.testsfailed > 0)


@pytest.fixture(scope="session")
def medgate_model(request: pytest.FixtureRequest) -> Any:
    """The gate of a test's parameter: a model (its engine loads on first use, once per worker),
    or a candidate against the reference of --against (README, "Fixtures")."""
    from medgate.plugin.fixtures import model_gate

    return model_gate(request)


@pytest.fixture
def medgate_task(request: pytest.FixtureRequest, medgate_model: Any) -> Any:
    """The ``TASK`` of the requesting test module, run on the parametrised model (once per model);
    ``medgate_task.gate(metric)`` gives that metric's verdict (README, "Fixtures")."""
    from medgate.plugin.fixtures import task_gate

    return task_gate(request, medgate_model)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if _active(item.config):
        from medgate.plugin.fixtures import shape_report

        shape_report(item, call, report)
    return report
