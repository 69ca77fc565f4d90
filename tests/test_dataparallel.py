"""Data-parallel generation in whole pytest sessions on the fake engine (plumbing only): a
model's prompts split over more workers than models, each prompt generated once, the same
verdicts and per-item scores for any -n, and clear errors when a shard's worker fails or dies.

The -n tests use a planted model (``fake_planted``): each prompt's answer is derived from that
prompt, so "every stored answer is its own prompt's" is a check that an answer stored or scored
under a neighbour's prompt fails (test_a_planted_misrouting_fails_the_checks shows it does)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from medgate.core.types import ScoringConfig
from medgate.models.engines.fake import planted_answer
from medgate.models.registry import load_registry
from medgate.pipeline.model_run import ModelRun, RunSettings
from medgate.tasks import TASKS
from tests.conftest import FIXTURES, copy_clinical_tests, engine_events, generated, outcomes

PROMPTS = 33 + 22  # distinct prompts of MedNLI and MeDiSumCode on the fixtures
TESTS_PER_MODEL = 2 + 7
TASK_NAMES = ("mednli", "medisumcode")
# a label and an ICD-10 code in each, so both tasks' per-item scores differ between items
PLANTED = ["ENTAILMENT I10", "NEUTRAL E11.9", "CONTRADICTION J18.9"]


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


def rows(cache: Path, model: str | None = None) -> dict[str, str]:
    """The generation cache's answers (of one model, or all), key -> text."""
    with sqlite3.connect(cache) as db:
        if model is None:
            return dict(db.execute("SELECT key, text FROM generations").fetchall())
        return dict(db.execute("SELECT key, text FROM generations WHERE model = ?", (model,)).fetchall())


def verdicts(reports: Path) -> list[tuple]:
    return sorted((o["model"], o["task"], o["metric"], o["status"], o["value"], o["low"], o["high"])
                  for o in outcomes(reports))


def per_item_scores(reports: Path) -> dict[str, object]:
    return {str(p.relative_to(reports)): json.loads(p.read_text())["items"]
            for p in sorted((reports / "baselines").rglob("*.json"))}


@pytest.fixture
def planted_models(fake_models: Path) -> Path:
    """fake_models with fake-a's answers planted per prompt (its thresholds and name unchanged)."""
    text = fake_models.read_text()
    assert text.count('fake_reply = "ENTAILMENT"') == 1
    fake_models.write_text(text.replace('fake_reply = "ENTAILMENT"', f"fake_planted = {json.dumps(PLANTED)}"))
    return fake_models


def planted_requests(models: Path, model: str) -> list[tuple[str, list, str]]:
    """(cache key, chat, planted answer) of every prompt of the model, computed in this process
    as the sessions compute them: the same registry, fixtures, prompts and keys."""
    spec = load_registry(models).resolve(model)
    run = ModelRun(spec, RunSettings(FIXTURES, limit=None))
    choices = spec.options["fake_planted"]
    requests = run.unique_requests([TASKS[t] for t in TASK_NAMES])
    return [(key, chat, planted_answer(chat, choices)) for key, chat, _ in requests]


def misrouted(models: Path, model: str, cache: Path) -> list[str]:
    """What is wrong with the stored answers: a prompt without its answer, an answer that is not
    the one planted for its own prompt, a row that is no prompt's. Empty: all are right."""
    stored = rows(cache, model)
    wanted = planted_requests(models, model)
    problems = [f"{key[:12]}: stored {stored.get(key)!r}, planted {answer!r}" for key, _, answer in wanted
                if stored.get(key) != answer]
    problems += [f"{key[:12]}: stored for no prompt of {model}" for key in set(stored) - {k for k, _, _ in wanted}]
    return problems


def planted_scores(models: Path, model: str) -> dict[str, dict[str, dict[str, float]]]:
    """task -> item id -> the scores of the item's planted answer, scored here with the task's scorer."""
    spec = load_registry(models).resolve(model)
    run = ModelRun(spec, RunSettings(FIXTURES, limit=None))
    out = {}
    for name in TASK_NAMES:
        plan = run.plan(TASKS[name])
        answers = [planted_answer(chat, spec.options["fake_planted"]) for chat in plan.chats]
        batch = plan.task.score_all(answers, plan.items, ScoringConfig())
        out[name] = {item.id: scores for item, scores in zip(plan.items, batch.per_item)}
    return out


def stored_scores(reports: Path, model: str) -> dict[str, dict[str, dict[str, float]]]:
    """task -> item id -> scores, from the run's saved baseline "b"."""
    return {name: {i["id"]: i["scores"] for i in json.loads((reports / "baselines" / "b" / model / f"{name}.json")
                                                            .read_text())["items"]} for name in TASK_NAMES}


def test_planted_answers_differ_between_items_and_can_be_recomputed(planted_models):
    wanted = planted_requests(planted_models, "fake-a")
    answers = [answer for _, _, answer in wanted]
    assert len(wanted) == PROMPTS and len(set(answers)) == PROMPTS  # every prompt its own answer
    assert {a.split(" [")[0] for a in answers} == set(PLANTED)  # all three choices are used
    scores = planted_scores(planted_models, "fake-a")
    # the planted labels make MedNLI right on some items and wrong on others: scores that can differ
    assert {s["accuracy"] for s in scores["mednli"].values()} == {0.0, 1.0}


def test_one_model_over_four_workers_generates_each_prompt_once_and_scores_as_without_xdist(suite, planted_models,
                                                                                            tmp_path):
    runs = {}
    for n in ("0", "2", "4"):
        log, cache = tmp_path / f"engine-{n}.log", tmp_path / f"generations-{n}.sqlite"
        result = medgate(suite, planted_models, cache, log, "-n", n, "--model", "fake-a", "--save-baseline", "b",
                         reports=f"reports-{n}")
        result.assert_outcomes(passed=1, failed=1, skipped=7)
        runs[n] = (result, log, cache, suite.path / f"reports-{n}")
    expected_scores = planted_scores(planted_models, "fake-a")
    for n, workers in (("0", ["main"]), ("2", ["gw0", "gw1"]), ("4", ["gw0", "gw1", "gw2", "gw3"])):
        result, log, cache, reports = runs[n]
        assert sorted(worker for _, _, worker, _ in engine_events(log, "load")) == workers  # an engine each
        assert generated(log) == len(rows(cache)) == PROMPTS  # every prompt exactly once, over all workers
        assert misrouted(planted_models, "fake-a", cache) == []  # each answer under its own prompt
        assert stored_scores(reports, "fake-a") == expected_scores  # each item scored on its own answer
        assert verdicts(reports) == verdicts(runs["0"][3])
        assert per_item_scores(reports) == per_item_scores(runs["0"][3])
        assert rows(cache) == rows(runs["0"][2])  # the same outputs, byte for byte
    # the controller's bar, fed by the four workers (pytest shows no worker's terminal)
    assert re.search(r"fake-a generation \(4 workers\): 100%\|[^|]*\| 55/55 \[", runs["4"][0].stderr.str())
    provenance = outcomes(runs["4"][3])[0]["provenance"]
    assert provenance["generation_workers"] == "gw0,gw1,gw2,gw3" and provenance["cached_items"] == 0


# Loaded by the session and by every xdist worker: each stored chunk's answers move one row on,
# so every answer lands under its neighbour's prompt (the scoring worker reads them back so).
MISROUTE = """
import medgate.pipeline.cache as cache

_put_many = cache.GenerationCache.put_many

def _rotated(self, model, entries, run=None):
    entries = list(entries)
    answers = [answer for _, answer in entries]
    return _put_many(self, model, [(key, answers[(i + 1) % len(answers)]) for i, (key, _) in enumerate(entries)], run)

cache.GenerationCache.put_many = _rotated
"""


def test_a_planted_misrouting_fails_the_checks(suite, planted_models, tmp_path):
    """The checks above can fail: with answers stored under a neighbour's prompt, the stored
    answers are not the planted ones, and -n 2 scores items unlike -n 0 and unlike their planted answers."""
    suite.makeconftest(MISROUTE)
    runs = {}
    for n in ("0", "2"):
        log, cache = tmp_path / f"engine-{n}.log", tmp_path / f"generations-{n}.sqlite"
        result = medgate(suite, planted_models, cache, log, "-n", n, "--model", "fake-a", "--save-baseline", "b",
                         reports=f"reports-{n}")
        assert "errors" not in result.parseoutcomes()
        runs[n] = (cache, suite.path / f"reports-{n}")
        assert len(rows(cache)) == PROMPTS  # every prompt has a stored answer: counting alone would pass
        assert len(misrouted(planted_models, "fake-a", cache)) == PROMPTS  # each one is a neighbour's
    # -n 2's scoring worker reads the other worker's shard from the cache, misrouted
    assert stored_scores(runs["2"][1], "fake-a") != planted_scores(planted_models, "fake-a")
    assert per_item_scores(runs["2"][1]) != per_item_scores(runs["0"][1])


def test_workers_are_divided_among_models_by_their_work_for_any_count(suite, planted_models, tmp_path):
    baseline = None
    for n, loads in (("0", {"fake-a": 1, "fake-b": 1}), ("2", {"fake-a": 1, "fake-b": 1}),
                     ("3", {"fake-a": 2, "fake-b": 1}), ("5", {"fake-a": 3, "fake-b": 2})):
        log, cache = tmp_path / f"engine-{n}.log", tmp_path / f"generations-{n}.sqlite"
        result = medgate(suite, planted_models, cache, log, "-n", n, "--model", "fake-a", "--model", "fake-b",
                         reports=f"reports-{n}")
        assert result.parseoutcomes()["passed"] == 1 and "errors" not in result.parseoutcomes()
        assert misrouted(planted_models, "fake-a", cache) == []  # two models' shards side by side, none mixed
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


def test_a_failing_shard_errors_the_models_tests_and_a_rerun_generates_only_what_is_missing(suite, planted_models,
                                                                                            tmp_path):
    log, cache = tmp_path / "engine.log", tmp_path / "generations.sqlite"
    result = medgate(suite, planted_models, cache, log, "-n", "3", "--model", "fake-a", "--chunk-size", "4",
                     MEDGATE_FAKE_DIE_AFTER="fake-a:5")
    result.assert_outcomes(errors=TESTS_PER_MODEL)
    out = result.stdout.str()
    assert re.search(r"EngineError: model fake-a: shard [123]/3 \(worker gw[012]\) failed: model fake-a: the engine "
                     r"died after 5 answers", out) and "Traceback" not in out
    assert len(rows(cache)) == 3 * 4  # each worker stored one whole chunk before its engine died
    before = generated(log)
    rerun = medgate(suite, planted_models, cache, log, "-n", "3", "--model", "fake-a", MEDGATE_FAKE_DIE_AFTER="")
    rerun.assert_outcomes(passed=1, failed=1, skipped=7)
    assert generated(log) - before == PROMPTS - 12 and len(rows(cache)) == PROMPTS
    assert misrouted(planted_models, "fake-a", cache) == []  # the two runs' answers, each under its own prompt


def test_a_worker_that_dies_mid_shard_errors_the_models_tests_naming_it(suite, planted_models, tmp_path):
    log, cache = tmp_path / "engine.log", tmp_path / "generations.sqlite"
    result = medgate(suite, planted_models, cache, log, "-n", "3", "--model", "fake-a", "--chunk-size", "2",
                     MEDGATE_FAKE_EXIT_AFTER="fake-a:4:gw1")
    outcome = result.parseoutcomes()
    assert "passed" not in outcome and outcome.get("errors", 0) >= TESTS_PER_MODEL - 1
    assert re.search(r"model fake-a: shard 2/3 \(worker gw1\): the worker died before its shard was done", result.stdout.str())
    kept = len(rows(cache))
    assert kept >= 4  # gw1's first two chunks, and whatever the others finished
    before = generated(log)
    rerun = medgate(suite, planted_models, cache, log, "-n", "3", "--model", "fake-a", MEDGATE_FAKE_EXIT_AFTER="")
    rerun.assert_outcomes(passed=1, failed=1, skipped=7)
    assert generated(log) - before == PROMPTS - kept
    assert misrouted(planted_models, "fake-a", cache) == []


def test_without_the_cache_each_model_stays_on_one_worker_and_the_header_says_why(suite, fake_models, tmp_path):
    log = tmp_path / "engine.log"
    result = medgate(suite, fake_models, tmp_path / "unused.sqlite", log, "-n", "3", "--model", "fake-a", "--no-cache")
    result.assert_outcomes(passed=1, failed=1, skipped=7)
    assert "medgate: --no-cache: each model runs on one worker" in result.stdout.str()
    assert len(engine_events(log, "load")) == 1 and generated(log) == PROMPTS


def test_the_reference_of_against_gets_a_worker_like_any_model_and_loads_once(suite, planted_models, tmp_path):
    """--against REF: REF has no tests of its own, but it is generated on a worker of its own (not
    by every worker that compares with it), and the verdicts do not depend on -n."""
    runs = {}
    for n, loads in (("0", {"fake-a": ["main"], "fake-b": ["main"]}), ("2", {"fake-a": ["gw0"], "fake-b": ["gw1"]}),
                     ("3", {"fake-a": ["gw0", "gw1"], "fake-b": ["gw2"]})):
        log, cache = tmp_path / f"engine-{n}.log", tmp_path / f"generations-{n}.sqlite"
        result = medgate(suite, planted_models, cache, log, "-n", n, "--model", "fake-a", "--against", "fake-b",
                         reports=f"reports-{n}")
        outcome = result.parseoutcomes()
        assert "errors" not in outcome and sum(outcome.values()) == 2 * TESTS_PER_MODEL, (n, outcome)
        found: dict[str, list[str]] = {}
        for model, _, worker, _ in engine_events(log, "load"):
            found.setdefault(model, []).append(worker)
        assert {m: sorted(w) for m, w in found.items()} == loads, n
        assert generated(log) == len(rows(cache)) == 2 * PROMPTS  # each model's prompts once
        assert misrouted(planted_models, "fake-a", cache) == []
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
