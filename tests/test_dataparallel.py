"""Data-parallel generation in whole pytest sessions on the fake engine (plumbing only): a
model's prompts split over more workers than models, each prompt generated once, the same
verdicts and per-item scores for any -n, and clear errors when a shard's worker fails or dies."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, copy_clinical_tests, engine_events, generated, outcomes

PROMPTS = 33 + 22  # distinct prompts of MedNLI and MeDiSumCode on the fixtures
TESTS_PER_MODEL = 2 + 7


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    return copy_clinical_tests(pytester, "test_mednli.py", "test_medisumcode.py")


def medgate(pytester: pytest.Pytester, models: Path, cache: Path, log: Path, *args: str,
            reports: str = "reports", **env: str) -> pytest.RunResult:
    """One session with its own generation cache and engine log."""
    pytester._monkeypatch.setenv("MEDGATE_GENERATIONS", str(cache))
    pytester._monkeypatch.setenv("MEDGATE_ENGINE_LOG", str(log))
    for name, value in env.items():
        pytester._monkeypatch.setenv(name, value)
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--models-file={models}", f"--data-dir={FIXTURES}",
        f"--reports-dir={pytester.path / reports}", "tests_medical", *args)


def rows(cache: Path) -> dict[str, str]:
    """The generation cache's answers, key -> text."""
    with sqlite3.connect(cache) as db:
        return dict(db.execute("SELECT key, text FROM generations").fetchall())


def verdicts(reports: Path) -> list[tuple]:
    return sorted((o["model"], o["task"], o["metric"], o["status"], o["value"], o["low"], o["high"])
                  for o in outcomes(reports))


def per_item_scores(reports: Path) -> dict[str, object]:
    return {str(p.relative_to(reports)): json.loads(p.read_text())["items"]
            for p in sorted((reports / "baselines").rglob("*.json"))}


def test_one_model_over_four_workers_generates_each_prompt_once_and_scores_as_without_xdist(suite, fake_models, tmp_path):
    runs = {}
    for n in ("0", "2", "4"):
        log, cache = tmp_path / f"engine-{n}.log", tmp_path / f"generations-{n}.sqlite"
        result = medgate(suite, fake_models, cache, log, "-n", n, "--model", "fake-a", "--save-baseline", "b",
                         reports=f"reports-{n}")
        result.assert_outcomes(passed=1, failed=1, skipped=7)
        runs[n] = (result, log, cache, suite.path / f"reports-{n}")
    for n, workers in (("0", ["main"]), ("2", ["gw0", "gw1"]), ("4", ["gw0", "gw1", "gw2", "gw3"])):
        result, log, cache, reports = runs[n]
        assert sorted(worker for _, _, worker, _ in engine_events(log, "load")) == workers  # an engine each
        assert generated(log) == len(rows(cache)) == PROMPTS  # every prompt exactly once, over all workers
        assert verdicts(reports) == verdicts(runs["0"][3])
        assert per_item_scores(reports) == per_item_scores(runs["0"][3])
        assert rows(cache) == rows(runs["0"][2])  # the same outputs, byte for byte
    # the controller's bar, fed by the four workers (pytest shows no worker's terminal)
    assert re.search(r"fake-a generation \(4 workers\): 100%\|[^|]*\| 55/55 \[", runs["4"][0].stderr.str())
    provenance = outcomes(runs["4"][3])[0]["provenance"]
    assert provenance["generation_workers"] == "gw0,gw1,gw2,gw3" and provenance["cached_items"] == 0


def test_workers_are_divided_among_models_by_their_work_for_any_count(suite, fake_models, tmp_path):
    baseline = None
    for n, loads in (("0", {"fake-a": 1, "fake-b": 1}), ("2", {"fake-a": 1, "fake-b": 1}),
                     ("3", {"fake-a": 2, "fake-b": 1}), ("5", {"fake-a": 3, "fake-b": 2})):
        log, cache = tmp_path / f"engine-{n}.log", tmp_path / f"generations-{n}.sqlite"
        result = medgate(suite, fake_models, cache, log, "-n", n, "--model", "fake-a", "--model", "fake-b",
                         reports=f"reports-{n}")
        assert result.parseoutcomes()["passed"] == 1 and "errors" not in result.parseoutcomes()
        found = {}
        for model, *_ in engine_events(log, "load"):
            found[model] = found.get(model, 0) + 1
        assert found == loads  # equal work: the spare worker goes to the model listed first
        assert generated(log) == 2 * PROMPTS
        baseline = baseline or verdicts(suite.path / "reports-0")
        assert verdicts(suite.path / f"reports-{n}") == baseline
        if n != "0":  # a bar per model on the controller, also when a model has one worker
            for model, workers in loads.items():
                bar = rf"{model} generation \({workers} workers?\): 100%\|[^|]*\| {PROMPTS}/{PROMPTS} \["
                assert re.search(bar, result.stderr.str()), (n, model)


def test_k_selection_shrinks_what_the_workers_generate(suite, fake_models, tmp_path):
    log, cache = tmp_path / "engine.log", tmp_path / "generations.sqlite"
    result = medgate(suite, fake_models, cache, log, "-n", "3", "--model", "fake-a", "-k", "mednli")
    result.assert_outcomes(passed=1, failed=1)
    assert len(engine_events(log, "load")) == 3 and generated(log) == len(rows(cache)) == 33


def test_a_failing_shard_errors_the_models_tests_and_a_rerun_generates_only_what_is_missing(suite, fake_models,
                                                                                            tmp_path):
    log, cache = tmp_path / "engine.log", tmp_path / "generations.sqlite"
    result = medgate(suite, fake_models, cache, log, "-n", "3", "--model", "fake-a", "--chunk-size", "4",
                     MEDGATE_FAKE_DIE_AFTER="fake-a:5")
    result.assert_outcomes(errors=TESTS_PER_MODEL)
    out = result.stdout.str()
    assert re.search(r"EngineError: model fake-a: shard [123]/3 \(worker gw[012]\) failed: model fake-a: the engine "
                     r"died after 5 answers", out) and "Traceback" not in out
    assert len(rows(cache)) == 3 * 4  # each worker stored one whole chunk before its engine died
    before = generated(log)
    rerun = medgate(suite, fake_models, cache, log, "-n", "3", "--model", "fake-a", MEDGATE_FAKE_DIE_AFTER="")
    rerun.assert_outcomes(passed=1, failed=1, skipped=7)
    assert generated(log) - before == PROMPTS - 12 and len(rows(cache)) == PROMPTS


def test_a_worker_that_dies_mid_shard_errors_the_models_tests_naming_it(suite, fake_models, tmp_path):
    log, cache = tmp_path / "engine.log", tmp_path / "generations.sqlite"
    result = medgate(suite, fake_models, cache, log, "-n", "3", "--model", "fake-a", "--chunk-size", "2",
                     MEDGATE_FAKE_EXIT_AFTER="fake-a:4:gw1")
    outcome = result.parseoutcomes()
    assert "passed" not in outcome and outcome.get("errors", 0) >= TESTS_PER_MODEL - 1
    assert re.search(r"model fake-a: shard 2/3 \(worker gw1\): the worker died before its shard was done", result.stdout.str())
    kept = len(rows(cache))
    assert kept >= 4  # gw1's first two chunks, and whatever the others finished
    before = generated(log)
    rerun = medgate(suite, fake_models, cache, log, "-n", "3", "--model", "fake-a", MEDGATE_FAKE_EXIT_AFTER="")
    rerun.assert_outcomes(passed=1, failed=1, skipped=7)
    assert generated(log) - before == PROMPTS - kept


def test_without_the_cache_each_model_stays_on_one_worker_and_the_header_says_why(suite, fake_models, tmp_path):
    log = tmp_path / "engine.log"
    result = medgate(suite, fake_models, tmp_path / "unused.sqlite", log, "-n", "3", "--model", "fake-a", "--no-cache")
    result.assert_outcomes(passed=1, failed=1, skipped=7)
    assert "medgate: --no-cache: each model runs on one worker" in result.stdout.str()
    assert len(engine_events(log, "load")) == 1 and generated(log) == PROMPTS


def test_the_reference_of_against_gets_a_worker_like_any_model_and_loads_once(suite, fake_models, tmp_path):
    """--against REF: REF has no tests of its own, but it is generated on a worker of its own (not
    by every worker that compares with it), and the verdicts do not depend on -n."""
    runs = {}
    for n, loads in (("0", {"fake-a": ["main"], "fake-b": ["main"]}), ("2", {"fake-a": ["gw0"], "fake-b": ["gw1"]}),
                     ("3", {"fake-a": ["gw0", "gw1"], "fake-b": ["gw2"]})):
        log, cache = tmp_path / f"engine-{n}.log", tmp_path / f"generations-{n}.sqlite"
        result = medgate(suite, fake_models, cache, log, "-n", n, "--model", "fake-a", "--against", "fake-b",
                         reports=f"reports-{n}")
        outcome = result.parseoutcomes()
        assert "errors" not in outcome and sum(outcome.values()) == 2 * TESTS_PER_MODEL, (n, outcome)
        found: dict[str, list[str]] = {}
        for model, _, worker, _ in engine_events(log, "load"):
            found.setdefault(model, []).append(worker)
        assert {m: sorted(w) for m, w in found.items()} == loads, n
        assert generated(log) == len(rows(cache)) == 2 * PROMPTS  # each model's prompts once
        runs[n] = verdicts(suite.path / f"reports-{n}")
        assert any(o.get("against") == "fake-b" for o in outcomes(suite.path / f"reports-{n}"))
    assert runs["2"] == runs["0"] and runs["3"] == runs["0"]


def test_with_fewer_workers_than_models_each_comparing_worker_generates_the_reference(suite, fake_models, tmp_path):
    models = tmp_path / "three.toml"
    models.write_text(fake_models.read_text() + '\n[models.fake-c]\npath = "."\nbackend = "fake"\nfake_reply = "x"\n')
    runs = {}
    for n in ("0", "2"):
        log, cache = tmp_path / f"engine-{n}.log", tmp_path / f"generations-{n}.sqlite"
        result = medgate(suite, models, cache, log, "-n", n, "--model", "fake-a", "--model", "fake-c",
                         "--against", "fake-b", reports=f"reports-{n}")
        outcome = result.parseoutcomes()
        assert "errors" not in outcome and sum(outcome.values()) == 4 * TESTS_PER_MODEL, (n, outcome)
        loads = [model for model, *_ in engine_events(log, "load")]
        assert sorted(set(loads)) == ["fake-a", "fake-b", "fake-c"] and loads.count("fake-b") <= (1 if n == "0" else 2)
        assert len(rows(cache)) == 3 * PROMPTS  # each worker stores what it generates; nothing twice in the cache
        runs[n] = verdicts(suite.path / f"reports-{n}")
    assert runs["2"] == runs["0"]
