"""One model's run, without pytest sessions: a task that breaks while it is planned or scored
errors alone, and the other tasks still get their one batched generation."""

from __future__ import annotations

import dataclasses

import pytest

from medgate.core.errors import DataError, MedgateError
from medgate.models.registry import load_registry
from medgate.pipeline.model_run import ModelRun, RunSettings
from medgate.tasks import TASKS
from tests.conftest import FIXTURES


def test_a_task_whose_loader_breaks_errors_alone_and_the_pass_stays_batched(fake_models, monkeypatch):
    import medgate.models.engines.fake as fake

    calls: list[int] = []
    real = fake.FakeEngine.generate

    def counting(self, chats, params, **kwargs):
        calls.append(len(chats))
        return real(self, chats, params, **kwargs)

    monkeypatch.setattr(fake.FakeEngine, "generate", counting)

    def broken_loader(path):
        raise KeyError("Summary")  # what a loader bug on odd data looks like

    broken = dataclasses.replace(TASKS["meqsum"], load_samples=broken_loader)
    run = ModelRun(load_registry(fake_models).resolve("fake-a"), RunSettings(FIXTURES, limit=None))
    run.prefetch([TASKS["mednli"], broken, TASKS["medisumcode"]])
    assert calls == [33 + 22]  # one pass for both healthy tasks
    with pytest.raises(DataError, match=r"MeQSum data could not be read \(KeyError: 'Summary'\)"):
        run.result(broken)
    assert run.result(TASKS["mednli"]).metrics["accuracy"] is not None
    assert run.result(TASKS["medisumcode"]).items


def test_a_scorer_that_breaks_errors_its_task_once_with_the_cause(fake_models):
    scored: list[int] = []

    def bad_scorer(output, sample):
        scored.append(1)
        raise ZeroDivisionError("division by zero")

    broken = dataclasses.replace(TASKS["mednli"], score_sample=bad_scorer)
    run = ModelRun(load_registry(fake_models).resolve("fake-a"), RunSettings(FIXTURES, limit=3))
    for _ in range(2):
        with pytest.raises(MedgateError, match=r"fake-a mednli: scoring failed \(ZeroDivisionError: division by zero\)"):
            run.result(broken)
    assert scored == [1]  # remembered: the task's other metrics get the same error without scoring again
