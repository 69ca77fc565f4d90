"""`--prompts reference:DIR` and models.toml's `prompts` in whole pytest sessions (fake engine):
usage errors, provenance in reports and baselines, and baselines of other prompts refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medgate.core.errors import ConfigError
from medgate.models.registry import load_registry
from tests.conftest import FIXTURES, REPO, copy_clinical_tests, outcomes, write_models
from tests.reference_checkout import COMMIT, write_checkout

GOOD = "ENTAILMENT NEUTRAL CONTRADICTION"


def models(path: Path, top: str = "") -> Path:
    return write_models(path, f"""
        {top}
        [models.fake]
        path = "."
        backend = "fake"
        fake_reply = "{GOOD}"
        """)


def medgate(pytester: pytest.Pytester, models_file: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--models-file={models_file}", f"--data-dir={FIXTURES}",
        f"--reports-dir={pytester.path / 'reports'}", "tests_medical", "--model", "fake", *args,
    )


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    return copy_clinical_tests(pytester, "test_mednli.py")


def test_a_broken_checkout_is_one_usage_error_naming_file_and_constant(suite, tmp_path):
    checkout = write_checkout(tmp_path / "CLUE")
    script = checkout / "eval" / "eval_MeDiSumQA.py"
    script.write_text(script.read_text().replace("user_prompt_template", "question_template"))
    result = medgate(suite, models(tmp_path / "models.toml"), f"--prompts=reference:{checkout}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert errors == [f"ERROR: {script}: user_prompt_template: not defined at module level"]


def test_reference_prompts_reach_provenance_and_baselines_and_other_prompts_do_not_compare(suite, tmp_path):
    checkout = write_checkout(tmp_path / "CLUE")
    toml = models(tmp_path / "models.toml")
    medgate(suite, toml, "--save-baseline", "own").assert_outcomes(skipped=2)
    result = medgate(suite, toml, f"--prompts=reference:{checkout}", "--save-baseline", "ref")
    result.assert_outcomes(skipped=2)
    found = outcomes(suite.path / "reports")
    assert {o["provenance"]["prompts"] for o in found} == {"reference"}
    assert {o["provenance"]["reference_commit"] for o in found} == {COMMIT}
    summary = (suite.path / "reports" / "summary.md").read_text()
    assert f"- prompts.mednli: reference (commit {COMMIT}, templates sha256 " in summary
    saved = json.loads((suite.path / "reports" / "baselines" / "ref" / "fake" / "mednli.json").read_text())
    assert saved["provenance"]["prompts"] == "reference" and saved["provenance"]["reference_commit"] == COMMIT
    assert saved["provenance"]["prompt_version"].startswith("mednli-reference-")
    assert "reference_dir" not in saved["provenance"]  # a path of this machine
    # a baseline measured with medgate's prompts does not compare with a run on the reference's
    mismatch = medgate(suite, toml, f"--prompts=reference:{checkout}", "--baseline", "own")
    mismatch.assert_outcomes(errors=2)
    assert "this run differs from baseline 'own': prompt version mednli-reference-" in mismatch.stdout.str()
    medgate(suite, toml, f"--prompts=reference:{checkout}", "--baseline", "ref").assert_outcomes(passed=2)


def test_models_toml_sets_the_prompts_relative_to_itself_and_the_option_wins(suite, tmp_path):
    write_checkout(tmp_path / "refs" / "CLUE")
    toml = models(tmp_path / "models.toml", 'prompts = "reference:refs/CLUE"')
    medgate(suite, toml).assert_outcomes(skipped=2)
    assert {o["provenance"]["prompts"] for o in outcomes(suite.path / "reports")} == {"reference"}
    medgate(suite, toml, "--prompts=medgate").assert_outcomes(skipped=2)
    assert {o["provenance"]["prompts"] for o in outcomes(suite.path / "reports")} == {"medgate"}


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        ('prompts = "clue"', "prompts", "expected 'medgate' or 'reference:DIR'"),
        ("prompts = 3", "prompts", "must be a string, got integer 3"),
        ('[models.m]\npath = "."\npublished = 7', "models.m.published", "must be a model name of the published figures"),
        ('[models.m]\npath = "."\npublished = " "', "models.m.published", "must be a model name of the published figures"),
    ],
)
def test_models_toml_prompts_and_published_are_validated(tmp_path, body, key, words):
    path = write_models(tmp_path / "models.toml", body)
    with pytest.raises(ConfigError) as err:
        load_registry(path)
    assert str(err.value).startswith(f"{path}: {key}: ") and words in str(err.value)


def test_models_toml_prompts_and_published_parse(tmp_path):
    path = write_models(tmp_path / "models.toml", 'prompts = "reference:../CLUE"\n[models.m]\npath = "."\npublished = "BioMistral-7B"')
    registry = load_registry(path)
    assert registry.prompts == "reference:../CLUE" and registry.models["m"].published == "BioMistral-7B"
    assert load_registry(REPO / "models.toml").prompts is None


def test_a_medisumcode_item_without_gold_codes_is_scored_and_named_not_an_error_of_the_task(pytester, tmp_path):
    pytester.mkdir("tests_medical")
    (pytester.path / "tests_medical" / "test_medisumcode.py").write_text(
        (REPO / "tests_medical" / "test_medisumcode.py").read_text())
    data = tmp_path / "data"
    data.mkdir()
    items = json.loads((FIXTURES / "MeDiSumCode.json").read_text())
    items[7]["icd_codes"] = []
    (data / "MeDiSumCode.json").write_text(json.dumps(items))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--models-file={models(tmp_path / 'models.toml')}", f"--data-dir={data}",
        f"--reports-dir={pytester.path / 'reports'}", "tests_medical", "--model", "fake")
    result.assert_outcomes(skipped=7)  # every metric computed (no thresholds), none errored
    summary = (pytester.path / "reports" / "summary.md").read_text()
    assert (f"- fake medisumcode no_gold_codes: 1 item(s) without gold codes, scored as the reference scores them "
            f"(P/R/F1 0): {items[7]['hadm_id']}") in summary
