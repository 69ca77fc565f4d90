"""--save-baseline / --baseline and expected failures, in whole pytest sessions (fake engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, copy_clinical_tests, outcomes, write_models

# By the reference rule a reply naming every label once is "correct" on every item.
GOOD = "ENTAILMENT NEUTRAL CONTRADICTION"
POOR = "ENTAILMENT"


def models(tmp_path: Path, reply: str, extra: str = "") -> Path:
    return write_models(tmp_path / f"models-{abs(hash((reply, extra)))}.toml", f"""
        [models.fake]
        path = "."
        backend = "fake"
        fake_reply = "{reply}"
        {extra}
        """)


def medgate(pytester: pytest.Pytester, models_file: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--models-file={models_file}", f"--data-dir={FIXTURES}",
        f"--reports-dir={pytester.path / 'reports'}", "tests_medical", "--model", "fake", *args,
    )


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    return copy_clinical_tests(pytester, "test_mednli.py", "test_medisumcode.py")


def test_saved_baseline_holds_scores_and_provenance_but_no_text(suite, tmp_path):
    medgate(suite, models(tmp_path, GOOD), "--save-baseline", "v1.0")
    saved = json.loads((suite.path / "reports" / "baselines" / "v1.0" / "fake" / "mednli.json").read_text())
    assert len(saved["items"]) == 33 and saved["items"][0]["scores"] == {"accuracy": 1.0, "no_label_rate": 0.0}
    prov = saved["provenance"]
    assert {"model_fingerprint", "dataset_hash", "prompt_version", "decoding", "packages"} <= set(prov)
    assert "output" not in json.dumps(saved["items"])  # no generated (possibly patient) text
    assert (suite.path / "reports" / "baselines" / "v1.0" / "fake" / "medisumcode.json").exists()


def test_same_model_against_its_baseline_passes(suite, tmp_path):
    medgate(suite, models(tmp_path, GOOD), "--save-baseline", "v1")
    result = medgate(suite, models(tmp_path, GOOD), "--baseline", "v1")
    result.assert_outcomes(passed=9)  # no thresholds: every metric is gated by the baseline alone
    assert all(o["comparison"]["drop"] == 0 for o in outcomes(suite.path / "reports"))


def test_planted_regression_fails_showing_drop_interval_and_p(suite, tmp_path):
    medgate(suite, models(tmp_path, GOOD), "--save-baseline", "v1")
    result = medgate(suite, models(tmp_path, POOR), "--baseline", "v1", "-k", "mednli")
    result.assert_outcomes(failed=1, passed=1)
    out = result.stdout.str()
    assert "regressed against the baseline: mednli accuracy dropped by 0.6364 (95% CI" in out
    assert "exact McNemar p = 9.537e-07" in out  # 21 discordant pairs, all one way: 2 * 0.5**21
    found = {o["metric"]: o for o in outcomes(suite.path / "reports")}
    assert found["accuracy"]["status"] == "fail" and found["accuracy"]["comparison"]["fails"] is True


def test_tolerance_in_models_toml_absorbs_the_drop(suite, tmp_path):
    medgate(suite, models(tmp_path, GOOD), "--save-baseline", "v1")
    tolerant = models(tmp_path, POOR, "tolerance = 0.7")
    medgate(suite, tolerant, "--baseline", "v1", "-k", "mednli").assert_outcomes(passed=2)


def test_baseline_of_other_items_is_a_clear_error(suite, tmp_path):
    medgate(suite, models(tmp_path, GOOD), "--save-baseline", "v1", "--limit", "10")
    result = medgate(suite, models(tmp_path, GOOD), "--baseline", "v1", "-k", "mednli")
    result.assert_outcomes(errors=2)
    assert "baseline 'v1' scored 10 items, this run 33" in result.stdout.str()


def test_missing_baseline_and_bad_name(suite, tmp_path):
    result = medgate(suite, models(tmp_path, GOOD), "--baseline", "nope", "-k", "mednli")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # before anything loads
    assert "--baseline nope: no such baseline" in result.stderr.str()
    medgate(suite, models(tmp_path, GOOD), "--save-baseline", "v1", "-k", "mednli")
    result = medgate(suite, models(tmp_path, GOOD), "--baseline", "v1")  # v1 holds MedNLI only
    result.assert_outcomes(passed=2, errors=7)
    assert "no baseline 'v1' for model fake and task medisumcode" in result.stdout.str()
    assert medgate(suite, models(tmp_path, GOOD), "--save-baseline", "../x").ret == pytest.ExitCode.USAGE_ERROR
    same = medgate(suite, models(tmp_path, GOOD), "--save-baseline", "v1", "--baseline", "v1")
    assert same.ret == pytest.ExitCode.USAGE_ERROR and "would overwrite the baseline" in same.stderr.str()


def test_expected_failure_from_models_toml_is_an_xfail_with_the_reason(suite, tmp_path):
    toml = models(tmp_path, POOR, '[models.fake.thresholds]\nmednli = { accuracy = 0.9 }\n'
                                  '[models.fake.expected_failures]\nmednli = "weak at inference"')
    result = medgate(suite, toml, "-k", "mednli", "-rx")
    result.assert_outcomes(xfailed=1, skipped=1)
    assert "known gap (models.toml): weak at inference" in result.stdout.str()
    summary = (suite.path / "reports" / "summary.md").read_text()
    assert summary.startswith("# medgate: PASSED") and "XFAIL (known gap)" in summary


def test_a_known_gap_never_hides_a_data_error(suite, tmp_path):
    """expected_failures covers a verdict below the bar, not a file that cannot be read."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "mli_test_v1.jsonl").write_text('{"sentence1": "a", "sentence2": "b", "gold_label": "neutral"}\n{broken\n')
    toml = models(tmp_path, POOR, '[models.fake.thresholds]\nmednli = { accuracy = 0.9 }\n'
                                  '[models.fake.expected_failures]\nmednli = "weak at inference"')
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", f"--models-file={toml}", f"--data-dir={data}",
                                        f"--reports-dir={suite.path / 'reports'}", "tests_medical", "--model", "fake",
                                        "-k", "mednli")
    result.assert_outcomes(errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    summary = (suite.path / "reports" / "summary.md").read_text()
    assert summary.startswith("# medgate: FAILED") and "line 2: not valid JSON" in summary
    assert {o["status"] for o in outcomes(suite.path / "reports")} == {"error"}


def test_a_known_gap_that_closed_fails_so_that_it_is_noticed(suite, tmp_path):
    toml = models(tmp_path, GOOD, '[models.fake.thresholds]\nmednli = { accuracy = 0.9 }\n'
                                  '[models.fake.expected_failures]\nmednli = "weak at inference"')
    result = medgate(suite, toml, "-k", "mednli and accuracy")
    result.assert_outcomes(failed=1)
    assert "the gap closed, remove expected_failures.mednli" in result.stdout.str()


def test_gate_on_interval_from_models_toml(suite, tmp_path):
    # POOR scores 12/33 = 0.364; its interval's lower bound is well below 0.3
    point = models(tmp_path, POOR, '[models.fake.thresholds]\nmednli = { accuracy = 0.3 }')
    medgate(suite, point, "-k", "mednli and accuracy").assert_outcomes(passed=1)
    interval = models(tmp_path, POOR, 'gate_on = "interval"\n[models.fake.thresholds]\nmednli = { accuracy = 0.3 }')
    result = medgate(suite, interval, "-k", "mednli and accuracy")
    result.assert_outcomes(failed=1)
    assert "95% lower bound" in result.stdout.str()
