"""The run's state shared by hooks and fixtures, and the controller that gathers every verdict
and writes the reports (on the xdist controller, or the single process without xdist)."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from medgate.core.errors import ConfigError
from medgate.core.outcome import Outcome
from medgate.judging.criteria import Criteria
from medgate.models.spec import ModelSpec
from medgate.pipeline.board import ShardBoard
from medgate.pipeline.model_run import ModelRun
from medgate.pipeline.shards import Shard
from medgate.plugin.flags import OUTCOME_PROPERTY, STATE
from medgate.plugin.options import RunConfig
from medgate.reporting.allure import write_run_files
from medgate.reporting.charts import model_chart
from medgate.reporting.comparisons import write_comparisons
from medgate.reporting.summary import environment_properties, headline, not_gated, verdict_table, write_summary
from medgate.reporting.attestation import write_attestations
from medgate.reporting.github import write_github
from medgate.reporting.openmetrics import write_metrics
from medgate.reporting.series import write_series
from medgate.reporting.runrecord import build_record, new_run_id, write_run_record
from medgate.reporting.table import write_models_table
from medgate.tasks.base import TaskSpec
from medgate.tasks.catalogue import Catalogue

ITEMS_PROPERTY = "medgate_items"  # ... and a model's per-item scores of a task (ids and numbers only)


@dataclass(frozen=True)
class GateKey:
    """What one parametrisation of the clinical tests gates: a model on its own criteria, or a
    candidate model against the reference of --against."""

    model: str
    compared: bool = False  # the candidate-vs-reference tests

    def test_id(self, against: Any) -> str:
        return against.test_id(self.model) if self.compared and against is not None else self.model


@dataclass
class RunState:
    config: RunConfig
    selected: dict[GateKey, dict[str, TaskSpec]] = field(default_factory=dict)  # after -k/-m: key -> task name -> task
    gates: dict[str, Any] = field(default_factory=dict)  # model name -> its ModelGate, once per process
    runs: dict[str, ModelRun] = field(default_factory=dict)  # planned before the tests (data-parallel)
    board: ShardBoard | None = None  # data-parallel generation: the shard board of this run
    shards: dict[str, list[Shard]] = field(default_factory=dict)  # model -> its shards, on every worker
    worker: str | None = None  # this xdist worker's id ("gw0"); None without xdist
    catalogue: Catalogue = field(default_factory=Catalogue)  # every task of the run, after collection
    criteria: dict[str, Criteria] = field(default_factory=dict)  # model -> its checked pass criteria

    def criteria_of(self, model: str) -> Criteria:
        try:
            return self.criteria[model]
        except KeyError:
            raise ConfigError(f"{model}: its pass criteria were not checked (no medgate test was collected)") from None

    @property
    def keys(self) -> dict[str, GateKey]:
        """Test id -> what it gates, in the order of the selected models."""
        against = self.config.against
        keys = [GateKey(m) for m in self.config.models]
        keys += [GateKey(m, compared=True) for m in self.config.models] if against else []
        return {k.test_id(against): k for k in keys}

    def selected_tasks(self, key: GateKey, fallback: TaskSpec) -> list[TaskSpec]:
        """The tasks selected for a key (after -k/-m); the asking task when collection saw none."""
        return list(self.selected.get(key, {fallback.name: fallback}).values())

    @property
    def generated(self) -> dict[str, dict[str, TaskSpec]]:
        """Every model this run generates, with every task it must generate: a model's own tests'
        and its comparisons'; the reference of --against (unless read from a baseline) for the
        tasks of every comparison with it. A model without selected tasks is left out."""
        against = self.config.against
        out: dict[str, dict[str, TaskSpec]] = {}
        for key, selected in self.selected.items():
            if selected:
                out.setdefault(key.model, {}).update(selected)
                if key.compared and against is not None and against.generated:
                    out.setdefault(against.spec.name, {}).update(selected)
        return out

    @property
    def unscheduled(self) -> set[str]:
        """Generated models with no tests of their own (the reference of --against, when not also
        a --model): nobody scores them, so they have no worker of their own under xdist."""
        return set(self.generated) - {key.model for key, selected in self.selected.items() if selected}

    def tasks_of_model(self, model: str, fallback: TaskSpec) -> list[TaskSpec]:
        """Every task a model must generate (one batched pass); the asking task when collection saw none."""
        return list(self.generated.get(model, {}).values()) or [fallback]

    def spec_of(self, name: str) -> ModelSpec:
        """A selected model's spec, or the reference's of --against."""
        against = self.config.against
        if name not in self.config.models and against is not None and against.is_model(name):
            return against.spec
        return self.config.models[name]

    def new_run(self, name: str, quiet: Any = None) -> ModelRun:
        spec = self.spec_of(name)
        return ModelRun(spec, self.config.settings, quiet) if quiet else ModelRun(spec, self.config.settings)

    def model_run(self, name: str, quiet: Any = None) -> ModelRun:
        """The model's run: the one planned for data-parallel generation (taken once), else a new one."""
        run = self.runs.pop(name, None) or self.new_run(name, quiet)
        if self.board is not None and name in self.shards:
            run.share(self.board, self.shards[name], self.config.shard_timeout)
        elif self.board is not None and self.worker is not None and name not in self.unscheduled:
            # (a reference loaded by every worker that compares with it would share one bar)
            run.report_to(self.board, self.worker)
        return run


def quiet_capture(config: pytest.Config) -> Any:
    """What lets the engine's progress bar reach the terminal through pytest's capture."""
    capman = config.pluginmanager.getplugin("capturemanager")
    return capman.global_and_fixture_disabled if capman is not None else None


class Controller:
    """Gathers outcomes from test reports and writes summary, charts, run record and Allure run
    files once the session ends: for every run of the clinical tests, also one where everything
    errored or skipped. A run that scored nothing fails."""

    def __init__(self, state: RunState, medical_run: bool) -> None:
        self.state = state
        self.medical_run = medical_run  # the clinical tests were asked for
        self.outcomes: list[Outcome] = []
        self.items: dict[str, dict[str, list[dict[str, Any]]]] = {}  # model -> task -> [{id, scores}]
        self.run_id = new_run_id()
        self.started = time.time()
        self.attestation: str | None = None  # "signed" / "unsigned" once written

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # The verdict of the call; or what ended the test in setup (an error, a missing data file).
        if report.when == "call" or (report.when == "setup" and not report.passed):
            for name, value in report.user_properties:
                if name == OUTCOME_PROPERTY:
                    self.outcomes.append(Outcome.from_json(value))
                elif name == ITEMS_PROPERTY:
                    data = json.loads(value)
                    self.items.setdefault(data["model"], {})[data["task"]] = data["items"]

    def _models(self) -> dict[str, dict[str, Any]]:
        """Where each model of the verdicts came from, for the release record's weights digest."""
        from medgate.models.engines import backend_of
        from medgate.models.fingerprint import resolve_location

        out: dict[str, dict[str, Any]] = {}
        for name in sorted({o.model for o in self.outcomes} | {o.against.split("@")[0] for o in self.outcomes if o.against}):
            try:
                spec = self.state.spec_of(name)
            except KeyError:
                continue
            fingerprint = next((o.provenance.get("model_fingerprint") for o in self.outcomes
                                if o.model == name and o.provenance.get("model_fingerprint")), None)
            remote = backend_of(spec).remote
            try:
                location = spec.location if remote else resolve_location(spec)
            except Exception:  # a model that could not be located: its statement says so
                location = spec.location
            owner = self.state.config.registry.criteria_of(spec)[0].removeprefix("models.")
            out[name] = {"source": "server" if remote else spec.source, "location": location, "fingerprint": fingerprint,
                         "criteria_from": owner}  # the models.toml entry whose criteria gate it
        return out

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.usage_error = session.exitstatus == pytest.ExitCode.USAGE_ERROR  # nothing ran: no reports
        if session.config.option.collectonly or self.usage_error or not (self.outcomes or self.medical_run):
            return
        ungated = not_gated(self.outcomes) if self.state.config.require_gate else []
        nothing = not any(o.value is not None for o in self.outcomes)
        if (nothing or ungated) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a green run that gated nothing is not a pass

        reports = self.state.config.reports_dir
        write_summary(reports, self.outcomes, self.state.config.require_gate)
        write_comparisons(reports, self.outcomes)
        config, line = self.state.config, headline(self.outcomes, self.state.config.require_gate)
        write_metrics(reports, self.outcomes)
        if config.against is not None and len(config.models) >= 2:  # a checkpoint series
            write_series(reports, self.outcomes, config.against.label,
                         {name: spec.step for name, spec in config.models.items()}, config.primary)
        write_github(reports, self.outcomes, line, [*config.models, *([config.against.label] if config.against else [])],
                     os.environ, sys.stdout)
        for model in sorted({o.model for o in self.outcomes if o.against is None}):
            model_chart(model, self.outcomes, reports / "charts" / f"{model}.png")
        criteria = {m: c.resolved() for m, c in self.state.criteria.items()}
        record = build_record(self.run_id, self.started, self.outcomes, headline(self.outcomes, self.state.config.require_gate),
                              self.items, criteria, self._models())
        write_run_record(reports, record)
        write_models_table(reports)
        if any(o.value is not None for o in self.outcomes):
            _, signed = write_attestations(reports, record, key_path=self.state.config.signing_key)
            self.attestation = "signed" if signed else "unsigned (set MEDGATE_SIGNING_KEY to an Ed25519 key to sign)"
        allure_dir = getattr(session.config.option, "allure_report_dir", None)
        if allure_dir:
            write_run_files(allure_dir, environment_properties(self.outcomes), os.environ)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if (terminalreporter.config.option.collectonly or getattr(self, "usage_error", False)
                or not (self.outcomes or self.medical_run)):
            return
        terminalreporter.section("medgate verdicts")
        terminalreporter.write_line(headline(self.outcomes, self.state.config.require_gate))
        for line in verdict_table(self.outcomes):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"summary: {self.state.config.reports_dir / 'summary.md'}")
        if self.attestation:
            terminalreporter.write_line(f"release record: {self.state.config.reports_dir / 'attestation.intoto.jsonl'} "
                                        f"({self.attestation})")
