"""--against: planted better, worse, equal and underpowered candidates on the fake engine (each
answers MedNLI item by item as planted), inheritance, baselines as references, NOT GATED."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from medgate.pipeline.plan import plan_task
from medgate.tasks import TASKS
from tests.conftest import FIXTURES, REPO, outcomes, write_models

ITEMS = plan_task(TASKS["mednli"], FIXTURES).items  # the 33 scored items, in order
WRONG = {"entailment": "NEUTRAL", "neutral": "CONTRADICTION", "contradiction": "ENTAILMENT"}


def rules(right: set[int]) -> str:
    """fake_rules answering items in ``right`` with the gold label, every other item wrongly."""
    pairs = [[f"SENTENCE_2: {item.fields['sentence2']}",
              str(item.reference).upper() if i in right else WRONG[str(item.reference)]] for i, item in enumerate(ITEMS)]
    return json.dumps(pairs)


def entry(name: str, right: set[int], extra: str = "") -> str:
    return f'[models.{name}]\npath = "."\nbackend = "fake"\nfake_rules = {rules(right)}\n{extra}\n'


REFERENCE = set(range(20))  # right on 20 of 33


def models(tmp_path: Path, *entries: str) -> Path:
    return write_models(tmp_path / "models.toml", entry("ref", REFERENCE) + "".join(entries))


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.mkdir("tests_medical")
    (pytester.path / "tests_medical" / "test_mednli.py").write_text((REPO / "tests_medical" / "test_mednli.py").read_text())
    return pytester


def medgate(pytester: pytest.Pytester, models_file: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--models-file={models_file}", f"--data-dir={FIXTURES}",
        f"--reports-dir={pytester.path / 'reports'}", "tests_medical", *args)


def compared(reports: Path, model: str) -> dict[str, dict]:
    return {o["metric"]: o for o in outcomes(reports) if o["model"] == model and o["against"]}


def test_an_identical_model_under_another_name_is_not_worse(suite, tmp_path):
    result = medgate(suite, models(tmp_path, entry("twin", REFERENCE)), "--model", "twin", "--against", "ref", "-rA")
    result.assert_outcomes(passed=2, skipped=2)  # twin's own metrics have no threshold; both comparisons pass
    acc = compared(suite.path / "reports", "twin")["accuracy"]
    c = acc["comparison"]
    assert c["verdict"] == "not worse" and c["drop"] == 0 and c["drop_low"] == c["drop_high"] == 0
    assert c["n_worse"] == c["n_better"] == 0 and acc["status"] == "pass"
    assert "PASSED tests_medical/test_mednli.py::test_mednli[twin-vs-ref-accuracy]" in result.stdout.str()


def test_a_candidate_right_nowhere_is_worse_naming_metric_difference_and_interval(suite, tmp_path):
    result = medgate(suite, models(tmp_path, entry("broken", set())), "--model", "broken", "--against", "ref")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert re.search(r"mednli accuracy worse than model ref: 0\.0000 vs 0\.6061, difference -0\.6061 \(95% CI "
                     r"-0\.\d{4} to -0\.\d{4}, 33 paired items\), margin 0\.0300, exact McNemar p = ", out), out
    c = compared(suite.path / "reports", "broken")["accuracy"]["comparison"]
    assert c["verdict"] == "worse" and c["n_worse"] == 20 and c["n_better"] == 0
    assert sorted(c["flips_worse"]) == sorted(ITEMS[i].id for i in REFERENCE)  # ids of right -> wrong
    # exact McNemar on 20 discordant pairs, all one way: 2 * 0.5**20
    assert c["p_value"] == pytest.approx(2 * 0.5**20, rel=1e-9, abs=0)
    # synthetic data: the flipped items' outputs side by side in Allure; the reports hold ids only
    results = suite.path / "reports" / "allure-results"
    attached = [a for p in results.glob("*-result.json") for a in json.loads(p.read_text()).get("attachments", [])
                if a["name"] == "mednli-accuracy-flips.json"]
    flips = json.loads((results / attached[0]["source"]).read_text())
    assert len(flips) == 20 and {f["direction"] for f in flips} == {"worse"}
    first = next(i for i, item in enumerate(ITEMS) if item.id == flips[0]["id"])
    assert flips[0]["reference_output"] == str(ITEMS[first].reference).upper()
    assert flips[0]["candidate_output"] == WRONG[str(ITEMS[first].reference)]


def test_a_better_candidate_is_better(suite, tmp_path):
    result = medgate(suite, models(tmp_path, entry("strong", set(range(33)))), "--model", "strong", "--against", "ref",
                     "-k", "accuracy")
    result.assert_outcomes(passed=1, skipped=1)
    c = compared(suite.path / "reports", "strong")["accuracy"]["comparison"]
    assert c["verdict"] == "better" and c["n_better"] == 13 and c["drop"] == pytest.approx(-13 / 33)


def test_an_underpowered_drop_is_inconclusive_never_a_pass(suite, tmp_path):
    # four right answers lost, none gained: -0.12 on 33 items cannot tell "worse" from "within 3 points"
    result = medgate(suite, models(tmp_path, entry("step", REFERENCE - {0, 1, 2, 3})), "--model", "step",
                     "--against", "ref", "-k", "accuracy")
    result.assert_outcomes(failed=1, skipped=1)
    acc = compared(suite.path / "reports", "step")["accuracy"]
    c = acc["comparison"]
    assert acc["status"] == "fail" and c["verdict"] == "inconclusive"
    assert c["drop_low"] < c["margin"] < c["drop_high"] and c["items_to_decide"] > 33
    assert f"about {c['items_to_decide']} paired items would decide" in result.stdout.str()
    # models.toml may accept an inconclusive comparison as a known gap (xfail), never as a pass
    relaxed = models(tmp_path, entry("step", REFERENCE - {0, 1, 2, 3}, 'inconclusive = "xfail"'))
    medgate(suite, relaxed, "--model", "step", "--against", "ref", "-k", "accuracy").assert_outcomes(xfailed=1, skipped=1)


def test_margins_from_models_toml_decide(suite, tmp_path):
    # the same four lost answers pass once a 30-point margin is accepted for this model
    wide = entry("step", REFERENCE - {0, 1, 2, 3}, "[models.step.margins]\nmednli = { accuracy = 0.3 }")
    medgate(suite, models(tmp_path, wide), "--model", "step", "--against", "ref", "-k", "accuracy").assert_outcomes(
        passed=1, skipped=1)
    assert compared(suite.path / "reports", "step")["accuracy"]["comparison"]["verdict"] == "not worse"


def test_a_checkpoint_by_path_inherits_its_references_settings_and_thresholds(suite, tmp_path):
    # the reference's own files given by path: the same model (identity), under the folder's name
    checkpoint = tmp_path / "checkpoints" / "step-5000"
    checkpoint.mkdir(parents=True)
    ref = entry("ref", REFERENCE, "[models.ref.thresholds]\nmednli = { accuracy = 0.5 }").replace(
        'path = "."', 'path = "checkpoints/step-5000"')
    toml = write_models(tmp_path / "models.toml", ref)
    result = medgate(suite, toml, "--model", str(checkpoint), "--against", "ref", "-rA")
    out = result.stdout.str()
    name = next(o["model"] for o in outcomes(suite.path / "reports"))
    assert name == "step-5000" and result.ret == pytest.ExitCode.OK
    own = {o["metric"]: o for o in outcomes(suite.path / "reports") if o["against"] is None}
    # fake backend and rules inherited: the same answers as ref; ref's threshold applies instead of a skip
    assert own["accuracy"]["threshold"] == 0.5 and own["accuracy"]["status"] == "pass"
    assert own["accuracy"]["provenance"]["inherits"] == "ref"
    assert f"PASSED tests_medical/test_mednli.py::test_mednli[{name}-vs-ref-accuracy]" in out
    summary = (suite.path / "reports" / "summary.md").read_text()
    assert "## Comparisons" in summary and f"### {name} vs ref" in summary
    assert f"{name} took its engine settings, chat template, thresholds and margins from ref" in summary


def test_a_models_toml_entry_may_inherit(tmp_path):
    from medgate.models.registry import load_registry

    toml = write_models(tmp_path / "models.toml", entry("ref", REFERENCE, 'max_model_len = 2048\n[models.ref.thresholds]\n'
                                                                           'mednli = { accuracy = 0.5 }\nmeqsum = { rouge1 = 0.1 }')
                        + '[models.child]\npath = "x"\ninherits = "ref"\n[models.child.thresholds]\nmednli = { accuracy = 0.6 }\n')
    from medgate.judging.criteria import resolve_criteria

    child = load_registry(toml).models["child"]
    assert child.backend == "fake" and child.max_model_len == 2048 and child.location == str(tmp_path / "x")
    assert resolve_criteria(toml, "child").thresholds == {"mednli": {"accuracy": 0.6}, "meqsum": {"rouge1": 0.1}}
    assert child.inherits == "ref"


def test_reference_scores_from_a_baseline_need_no_generation(suite, tmp_path, monkeypatch):
    toml = models(tmp_path, entry("broken", set()))
    medgate(suite, toml, "--model", "ref", "--save-baseline", "release-1")
    log = tmp_path / "loads.log"
    monkeypatch.setenv("MEDGATE_ENGINE_LOG", str(log))
    result = medgate(suite, toml, "--model", "broken", "--against", "ref@release-1", "-k", "accuracy")
    result.assert_outcomes(failed=1, skipped=1)
    assert [line.split()[1] for line in log.read_text().splitlines() if line.startswith("load ")] == ["broken"]  # ref was not loaded
    assert compared(suite.path / "reports", "broken")["accuracy"]["comparison"]["reference"] == "model ref@release-1"
    files = sorted(p.name for p in (suite.path / "reports" / "comparisons").iterdir())
    assert files == ["broken-vs-ref@release-1.csv", "broken-vs-ref@release-1.md", "broken-vs-ref@release-1.png"]


@pytest.mark.parametrize(("args", "words"), [
    (["--model", "ref", "--against", "nope"], "--against nope: unknown model 'nope'"),
    (["--model", "ref", "--against", "ref"], "compares model ref with itself"),
    (["--model", "ref", "--against", "ref@missing"], "--baseline missing: no such baseline"),
])
def test_a_reference_that_cannot_be_used_is_a_usage_error(suite, tmp_path, args, words):
    result = medgate(suite, models(tmp_path), *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR and words in result.stderr.str()


def test_a_baseline_of_other_items_is_a_usage_error(suite, tmp_path):
    toml = models(tmp_path, entry("cand", REFERENCE))
    medgate(suite, toml, "--model", "ref", "--save-baseline", "small", "--limit", "5")
    result = medgate(suite, toml, "--model", "cand", "--against", "ref@small")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "has limit 5, this run None; a baseline of other data, prompts or items cannot be compared" in result.stderr.str()


def test_a_model_gated_by_nothing_is_named_and_fails_with_require_gate(suite, tmp_path):
    toml = models(tmp_path)
    result = medgate(suite, toml, "--model", "ref")
    assert result.ret == pytest.ExitCode.OK
    assert "NOT GATED: ref" in result.stdout.str()
    assert "NOT GATED: ref" in (suite.path / "reports" / "summary.md").read_text()
    strict = medgate(suite, toml, "--model", "ref", "--require-gate")
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    assert (suite.path / "reports" / "summary.md").read_text().startswith("# medgate: FAILED (--require-gate: ref")


def test_non_inferiority_against_a_baseline(suite, tmp_path):
    toml = models(tmp_path, entry("cand", REFERENCE - {0, 1, 2, 3}, 'regression = "non_inferiority"'))
    medgate(suite, toml, "--model", "cand", "--save-baseline", "b1")
    # the same model against its own baseline: difference 0, not worse
    result = medgate(suite, toml, "--model", "cand", "--baseline", "b1", "-k", "accuracy")
    result.assert_outcomes(passed=1)
    c = outcomes(suite.path / "reports")[0]["comparison"]
    assert c["rule"] == "non_inferiority" and c["verdict"] == "not worse"
