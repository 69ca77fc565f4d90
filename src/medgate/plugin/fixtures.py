"""What the two fixtures and the report hook do once medgate is on: the gate of a test's model
(``medgate_model``), the run of the module's task on it (``medgate_task``), and one-line errors
that still reach the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from medgate.core.errors import ConfigError, MedgateError, MissingDataFile
from medgate.models.spec import ModelSpec
from medgate.plugin.flags import MODEL_FIXTURE, STATE
from medgate.plugin.session import module_task
from medgate.plugin.state import OUTCOME_PROPERTY, GateKey, RunState, quiet_capture
from medgate.reporting.junit import junit_properties
from medgate.plugin.taskgate import ModelGate, PairGate, TaskGate, error_outcome, skipped_outcome
from medgate.tasks.base import TaskSpec


def _model_gate(config: pytest.Config, spec: ModelSpec) -> ModelGate:
    """A model's gate, once per process: its own tests and its comparisons share one run, and it
    lives until the session ends (a parametrised session fixture is torn down between params)."""
    state = config.stash[STATE]
    if spec.name not in state.gates:
        state.gates[spec.name] = ModelGate(state.model_run(spec.name, quiet_capture(config)), state)
        config.add_cleanup(state.gates[spec.name].close)
    return state.gates[spec.name]


def model_gate(request: pytest.FixtureRequest) -> ModelGate | PairGate:
    state = request.config.stash[STATE]
    key = state.keys[request.param]
    gate = _model_gate(request.config, state.config.models[key.model])
    against = state.config.against
    if not key.compared or against is None:
        return gate
    reference = _model_gate(request.config, against.spec) if against.generated else None
    return PairGate(gate, against, reference, state)


def _asked_for(config: pytest.Config, task: TaskSpec, module_file: str) -> bool:
    """Did the user name this task (its test file, or its name in -k)? Then a missing file is an error."""
    name = Path(module_file).name
    in_args = any(Path(str(arg).split("::")[0]).name == name for arg in config.invocation_params.args)
    return in_args or task.name in (config.getoption("keyword") or "")


def task_gate(request: pytest.FixtureRequest, gate: ModelGate | PairGate) -> TaskGate:
    state = request.config.stash[STATE]
    task = module_task(state, request)
    if task is None:
        found = getattr(request.module, "TASK", None)
        what = "no TASK" if found is None else f"TASK is a {type(found).__name__}, not a medgate.TaskSpec"
        raise ConfigError(f"{request.module.__name__}: medgate_task needs a module-level TASK = TaskSpec(...) ({what})")
    key = state.keys[request.node.callspec.params[MODEL_FIXTURE]]
    try:
        return TaskGate(request, gate, key, task)
    except MissingDataFile as exc:
        if _asked_for(request.config, task, str(request.module.__file__)):
            raise
        outcome = skipped_outcome(key.model, task, request.node.callspec.params.get("metric", "?"), str(exc),
                                  _against_label(state, key))
        request.node.user_properties.append((OUTCOME_PROPERTY, outcome.to_json()))
        pytest.skip(f"{exc} (run its test file or -k {task.name} to make this an error)")


def shape_report(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    # Our own errors already say what and where: one line, no traceback dump.
    if call.excinfo is not None and call.excinfo.errisinstance(MedgateError):
        report.longrepr = f"{call.excinfo.typename}: {call.excinfo.value}"
    recorded = any(name == OUTCOME_PROPERTY for name, _ in report.user_properties)
    if report.failed and not recorded and call.excinfo is not None:
        _record_error(item, report, call.excinfo)


def _record_error(item: pytest.Item, report: pytest.TestReport, excinfo: Any) -> None:
    """A test that errored before its verdict (data, engine, baseline) still reaches the summary."""
    callspec = getattr(item, "callspec", None)
    state = item.config.stash[STATE]
    task = module_task(state, item)
    if callspec is None or MODEL_FIXTURE not in callspec.params or task is None:
        return
    key = state.keys[callspec.params[MODEL_FIXTURE]]
    outcome = error_outcome(key.model, task, callspec.params.get("metric", "?"), f"{excinfo.typename}: {excinfo.value}",
                            _against_label(state, key))
    report.user_properties.append((OUTCOME_PROPERTY, outcome.to_json()))
    # junitxml writes the properties of the item (the last report's), not of this setup report
    item.user_properties.extend(junit_properties(outcome))


def _against_label(state: RunState, key: GateKey) -> str | None:
    against = state.config.against
    return against.label if key.compared and against is not None else None
