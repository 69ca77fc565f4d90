"""Whole pytest sessions of the medgate plugin, on the fake engine (plumbing only)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from medgate.pipeline.plan import plan_task
from medgate.tasks import mednli
from tests.conftest import FIXTURES, REPO, engine_events, outcomes, write_models

MEDNLI_TEST = (REPO / "tests_medical" / "test_mednli.py").read_text()


def run(pytester: pytest.Pytester, models: Path, *args: str, data_dir: Path = FIXTURES) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        # "--opt=value" forms: pytest takes separate path-like values for rootdir candidates.
        "-p", "no:cacheprovider", f"--models-file={models}", f"--data-dir={data_dir}",
        f"--reports-dir={pytester.path / 'reports'}", *args,
    )


def share_of_entailment_items() -> float:
    """Accuracy of a model that always answers ENTAILMENT, computed from the scored items."""
    plan = plan_task(mednli.TASK, FIXTURES)
    return sum(s.reference == "entailment" for s in plan.items) / len(plan.items)


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.mkdir("tests_medical")
    (pytester.path / "tests_medical" / "test_mednli.py").write_text(MEDNLI_TEST)
    return pytester


def test_unknown_model_is_one_usage_error_listing_known_names(suite, fake_models):
    result = run(suite, fake_models, "tests_medical", "--model", "gpt-9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1
    assert "unknown model 'gpt-9'" in errors[0] and "known models: fake-a, fake-b" in errors[0]
    assert errors[0].endswith("aliases: a -> fake-a")  # the names users may also type
    assert "Traceback" not in result.stderr.str()


def test_the_design_cards_command_collects_meditron_7b_under_its_alias(suite):
    """`pytest -n 4 --model meditron` as the design card writes it, against the shipped models.toml."""
    result = run(suite, REPO / "models.toml", "-n", "4", "--model", "meditron", "--collect-only", "-q", "tests_medical")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    collected = [line for line in result.stdout.lines if "::" in line]
    assert collected == [f"tests_medical/test_mednli.py::test_mednli[meditron-7b-{m}]" for m in mednli.TASK.metric_names]


def test_malformed_models_toml_is_one_usage_error_naming_the_key(suite, tmp_path):
    bad = write_models(tmp_path / "bad.toml", '[models.x]\npath = "."\nmax_model_len = "big"\n')
    result = run(suite, bad, "tests_medical", "--model", "x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert errors == [f"ERROR: {bad}: models.x.max_model_len: must be a positive integer, got string 'big'"]


def test_bad_limit_is_a_usage_error(suite, fake_models):
    result = run(suite, fake_models, "tests_medical", "--limit", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "expected a positive integer, got 0" in result.stderr.str()


def test_thresholds_pass_fail_and_skip_with_clear_messages(suite, fake_models):
    result = run(suite, fake_models, "tests_medical", "--model", "fake-a", "--model", "fake-b", "-rA")
    # fake-a always says ENTAILMENT: right on the entailment items only, below its 0.9 floor.
    result.assert_outcomes(passed=1, failed=1, skipped=2)
    out = result.stdout.str()
    expected = share_of_entailment_items()
    assert re.search(rf"fake-a mednli accuracy = {expected:.4f} \(95% CI 0\.\d{{4}} to 0\.\d{{4}}\) is below the floor 0\.9000", out)
    assert "fake-b mednli accuracy = " in out and "(no threshold set for this model)" in out
    by_key = {(o["model"], o["metric"]): o for o in outcomes(suite.path / "reports")}
    assert by_key[("fake-a", "accuracy")]["status"] == "fail"
    assert by_key[("fake-a", "no_label_rate")]["status"] == "pass"
    assert by_key[("fake-b", "accuracy")]["status"] == "no_threshold"
    summary = (suite.path / "reports" / "summary.md").read_text()
    assert summary.startswith("# medgate: FAILED")
    assert re.search(rf"\| fake-a \| mednli \| accuracy \| {expected:.4f} \| 0\.\d{{4}}-0\.\d{{4}} \| >= 0\.9000 \| - \| FAIL \|", summary)


def test_limit_caps_items_per_task(suite, fake_models):
    run(suite, fake_models, "tests_medical", "--model", "fake-b", "--limit", "5")
    (first, *_) = outcomes(suite.path / "reports")
    assert first["provenance"]["n_items"] == 5


def test_one_engine_load_per_model_under_xdist(pytester, fake_models, tmp_path, monkeypatch):
    """With many tests per model, plain `load` scheduling would spread a model over both workers."""
    log = tmp_path / "loads.log"
    monkeypatch.setenv("MEDGATE_ENGINE_LOG", str(log))
    pytester.makepyfile(
        test_many="""
        import pytest

        @pytest.mark.parametrize("i", range(12))
        def test_uses_engine(medgate_model, i):
            assert medgate_model.run.engine is not None
        """
    )
    result = run(pytester, fake_models, "-n", "2", "--model", "fake-a", "--model", "fake-b")
    result.assert_outcomes(passed=24)
    loads = engine_events(log, "load")
    assert sorted(model for model, *_ in loads) == ["fake-a", "fake-b"]
    assert all(worker.startswith("gw") for _, _, worker, _ in loads)


def test_broken_data_row_errors_the_task_with_file_line_and_field(suite, fake_models, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = (FIXTURES / "mli_test_v1.jsonl").read_text().splitlines()
    rows[6] = json.dumps({"sentence1": "Afebrile.", "gold_label": "neutral"})
    (data / "mli_test_v1.jsonl").write_text("\n".join(rows) + "\n")
    result = run(suite, fake_models, "tests_medical", "--model", "fake-a", "--model", "fake-b", data_dir=data)
    result.assert_outcomes(errors=4)  # an error of the affected tests, not a failed gate
    out = result.stdout.str()
    assert f"DataError: {data / 'mli_test_v1.jsonl'}, line 7, field 'sentence2': missing field" in out
    assert "Traceback" not in out and "raise DataError" not in out
    errors = outcomes(suite.path / "reports")  # the summary lists what errored, not only verdicts
    assert len(errors) == 4 and {o["status"] for o in errors} == {"error"}
    assert "line 7, field 'sentence2'" in errors[0]["message"]
    assert (suite.path / "reports" / "summary.md").read_text().startswith("# medgate: FAILED")


def test_missing_data_file_skips_the_task_unless_it_was_asked_for(suite, fake_models, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(FIXTURES / "MeDiSumCode.json", partial)  # MedNLI's file is missing, MeDiSumCode's is there
    (suite.path / "tests_medical" / "test_medisumcode.py").write_text(
        (REPO / "tests_medical" / "test_medisumcode.py").read_text())
    result = run(suite, fake_models, "tests_medical", "--model", "fake-a", "-rs", data_dir=partial)
    result.assert_outcomes(skipped=2 + 7)  # MedNLI for its file, MeDiSumCode's metrics for having no threshold
    assert result.ret == pytest.ExitCode.OK
    assert f"{partial / 'mli_test_v1.jsonl'}: MedNLI data file not found" in result.stdout.str()
    summary = (suite.path / "reports" / "summary.md").read_text()
    assert summary.startswith("# medgate: PASSED")
    assert "Not run, no data file" in summary and f"{partial / 'mli_test_v1.jsonl'}: MedNLI data file not found" in summary
    for asked in (["tests_medical/test_mednli.py"], ["tests_medical", "-k", "mednli"]):
        result = run(suite, fake_models, *asked, "--model", "fake-a", data_dir=partial)
        result.assert_outcomes(errors=2)
        assert f"{partial / 'mli_test_v1.jsonl'}: MedNLI data file not found" in result.stdout.str()


def test_a_data_dir_holding_none_of_the_files_is_a_usage_error_pointing_below(suite, fake_models, tmp_path):
    (tmp_path / "clue" / "v1").mkdir(parents=True)
    shutil.copy(FIXTURES / "mli_test_v1.jsonl", tmp_path / "clue" / "v1")
    result = run(suite, fake_models, "tests_medical", "--model", "fake-a", data_dir=tmp_path / "clue")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "holds none of the task files" in result.stderr.str()
    assert f"did you mean --data-dir {tmp_path / 'clue' / 'v1'}?" in result.stderr.str()


def test_a_run_that_scored_nothing_fails_and_says_so(suite, fake_models, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(FIXTURES / "MeDiSumCode.json", partial)  # only a file of a task that is not selected
    result = run(suite, fake_models, "tests_medical", "--model", "fake-a", data_dir=partial)
    result.assert_outcomes(skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "medgate: NOTHING SCORED" in result.stdout.str()
    assert (suite.path / "reports" / "summary.md").read_text().startswith("# medgate: NOTHING SCORED")


def test_allure_results_carry_labels_parameters_and_metric_json(suite, fake_models):
    run(suite, fake_models, "tests_medical", "--model", "fake-a")
    results_dir = suite.path / "reports" / "allure-results"
    tests = [json.loads(p.read_text()) for p in results_dir.glob("*-result.json")]
    assert len(tests) == 2
    accuracy = next(t for t in tests if "accuracy" in t["name"])
    labels = {(l["name"], l["value"]) for l in accuracy["labels"]}
    assert {("model", "fake-a"), ("task", "mednli"), ("metric", "accuracy")} <= labels
    params = {p["name"]: p for p in accuracy["parameters"]}
    assert float(params["value"]["value"]) == pytest.approx(share_of_entailment_items())
    assert params["value"].get("excluded") is True
    assert params["threshold"]["value"] == "0.9"
    assert params["data_dir"].get("excluded") is True
    attachment = next(a for a in accuracy["attachments"] if a["name"] == "mednli-accuracy.json")
    body = json.loads((results_dir / attachment["source"]).read_text())
    assert body["value"] == pytest.approx(share_of_entailment_items()) and len(body["per_item"]) == 33
    env = (results_dir / "environment.properties").read_text()
    assert "fake-a.engine=fake" in env and "dataset.mednli=sha256" in env


def test_allure_history_id_is_stable_across_runs_with_different_values(suite, fake_models, tmp_path):
    ids = []
    for reply in ("ENTAILMENT", "NEUTRAL"):
        body = fake_models.read_text().replace('fake_reply = "ENTAILMENT"', f'fake_reply = "{reply}"')
        models = write_models(tmp_path / f"{reply}.toml", body)
        run(suite, models, "tests_medical", "--model", "fake-a")
        results = [json.loads(p.read_text()) for p in (suite.path / "reports" / "allure-results").glob("*-result.json")]
        ids.append(sorted(r["historyId"] for r in results))
        shutil.rmtree(suite.path / "reports")
    assert ids[0] == ids[1]
