"""Report files: their content, not only their existence (fake engine for the runs)."""

from __future__ import annotations

import csv
import io
import json
import struct
from pathlib import Path

import pytest

from medgate.cli import build_html
from medgate.core.outcome import Comparison, Outcome
from medgate.reporting.allure import CATEGORIES, executor_info
from medgate.reporting.charts import model_chart
from medgate.reporting.table import models_table, store_run, write_models_table
from tests.conftest import FIXTURES, REPO


def outcome(model, task, metric, value, status="pass", **extra):
    return Outcome(model=model, task=task, metric=metric, value=value, low=value - 0.1, high=value + 0.1,
                   threshold=0.2, status=status, message="", **extra)


def comparison(baseline: float) -> Comparison:
    return Comparison(task="t", metric="m", reference="baseline 'b'", rule="significant_drop", test="paired bootstrap",
                      n_pairs=10, reference_value=baseline, candidate_value=0.2, drop=0.1, drop_low=0.0, drop_high=0.2,
                      p_value=0.5)


def test_executor_from_ci_variables_without_secrets():
    env = {"GITHUB_RUN_NUMBER": "42", "GITHUB_RUN_ID": "9", "GITHUB_SERVER_URL": "https://example.invalid",
           "GITHUB_REPOSITORY": "org/repo", "GITHUB_TOKEN": "ghp_secret"}
    info = executor_info(env)
    assert info == {"name": "GitHub Actions", "type": "github", "buildName": "GitHub Actions #42",
                    "buildUrl": "https://example.invalid/org/repo/actions/runs/9", "buildOrder": "42"}
    assert "ghp_secret" not in json.dumps(info)
    assert executor_info({}) is None and executor_info({"CI": "true"})["name"] == "CI"


def test_models_table_takes_the_latest_value_per_model_task_metric(tmp_path):
    store_run(tmp_path, [outcome("a", "mednli", "accuracy", 0.5), outcome("b", "mednli", "accuracy", 0.6)])
    store_run(tmp_path, [outcome("a", "mednli", "accuracy", 0.55), outcome("a", "meqsum", "rougeL", 0.2)])
    [section] = models_table(tmp_path)  # no provenance: one data set, "not recorded"
    assert section.columns == [("mednli", "accuracy"), ("meqsum", "rougeL")]
    assert {k: o.value for k, o in section.cells.items()} == {
        ("a", "mednli", "accuracy"): 0.55, ("a", "meqsum", "rougeL"): 0.2, ("b", "mednli", "accuracy"): 0.6}
    md, csv_path = write_models_table(tmp_path)
    assert "| a | 55.00 | 20.00 |" in md.read_text() and "| b | 60.00 | - |" in md.read_text()
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert [(r["model"], r["mednli accuracy"], r["meqsum rougeL"]) for r in rows] == [("a", "55.00", "20.00"),
                                                                                       ("b", "60.00", "")]


def test_model_chart_is_a_png_with_a_row_per_metric(tmp_path):
    few = model_chart("a", [outcome("a", "mednli", "accuracy", 0.5)], tmp_path / "few.png")
    many = model_chart("a", [outcome("a", "t", f"m{i}", 0.1 * i, comparison=comparison(0.3)) for i in range(9)],
                       tmp_path / "many.png")
    heights = []
    for path in (few, many):
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        heights.append(struct.unpack(">II", data[16:24])[1])
    assert heights[1] > heights[0]
    assert model_chart("nobody", [outcome("a", "t", "m", 0.1)], tmp_path / "none.png") is None


def medgate(pytester, models, *args, data_dir=FIXTURES):
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--models-file={models}", f"--data-dir={data_dir}",
        f"--reports-dir={pytester.path / 'reports'}", "tests_medical", *args)


@pytest.fixture
def suite(pytester, fake_models):
    pytester.mkdir("tests_medical")
    (pytester.path / "tests_medical" / "test_mednli.py").write_text((REPO / "tests_medical" / "test_mednli.py").read_text())
    return pytester


def results(reports: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (reports / "allure-results").glob("*-result.json")]


def test_run_files_perf_metrics_and_samples(suite, fake_models, monkeypatch):
    monkeypatch.setenv("GITHUB_RUN_NUMBER", "7")
    medgate(suite, fake_models, "--model", "fake-a", "--model", "fake-b")
    folder = suite.path / "reports" / "allure-results"
    assert json.loads((folder / "categories.json").read_text()) == CATEGORIES
    assert json.loads((folder / "executor.json").read_text())["buildName"] == "GitHub Actions #7"
    perf = [r for p in folder.glob("*-perf.json") for r in json.loads(p.read_text())]
    keys = {r["key"]: r for r in perf}
    assert set(keys) == {f"fake-{m}.mednli.{x}" for m in "ab" for x in ("accuracy", "no_label_rate")}
    assert keys["fake-a.mednli.accuracy"]["better"] == "higher" and keys["fake-a.mednli.no_label_rate"]["better"] == "lower"
    # synthetic data: prompts and outputs are attached, once per model and task
    sample_files = [a for r in results(suite.path / "reports") for a in r.get("attachments", []) if a["name"] == "mednli-samples.json"]
    assert len(sample_files) == 2
    body = json.loads((folder / sample_files[0]["source"]).read_text())
    assert len(body) == 33 and body[0]["prompt"][0]["role"] == "system" and "output" in body[0]
    chart = suite.path / "reports" / "charts" / "fake-a.png"
    assert chart.read_bytes()[:4] == b"\x89PNG"
    assert "fake-a" in (suite.path / "reports" / "models_table.md").read_text()


def test_user_data_is_not_attached_unless_asked(suite, fake_models, tmp_path):
    data = tmp_path / "user-data"
    data.mkdir()
    # The same items in other bytes: a copy of a shipped file would be synthetic (its hash is in
    # the package's manifest), wherever it lies.
    lines = (FIXTURES / "mli_test_v1.jsonl").read_text().splitlines()
    (data / "mli_test_v1.jsonl").write_text("".join(json.dumps(json.loads(line), indent=None, separators=(", ", ": "),
                                                                sort_keys=True) + "\n" for line in lines))
    medgate(suite, fake_models, "--model", "fake-a", data_dir=data)
    texts = "".join(p.read_text() for p in (suite.path / "reports").rglob("*") if p.is_file() and p.suffix in (".json", ".md", ".txt", ".csv", ".properties"))
    premise = json.loads((FIXTURES / "mli_test_v1.jsonl").read_text().splitlines()[5])["sentence1"]
    assert premise not in texts  # no note text copied into any report file
    medgate(suite, fake_models, "--model", "fake-a", "--attach-samples", data_dir=data)
    texts = "".join(p.read_text() for p in (suite.path / "reports" / "allure-results").glob("*.json"))
    assert premise in texts


def test_html_report_lists_the_runs_tests_and_trends_metrics(suite, fake_models):
    reports = suite.path / "reports"
    for _ in range(2):
        medgate(suite, fake_models, "--model", "fake-a")
        index = build_html(reports)
    assert index.exists() and "<html" in index.read_text().lower()
    listed = json.loads((reports / "html" / "test-results.json").read_text())["byId"].values()
    assert sorted(t["name"] for t in listed) == ["test_mednli[fake-a-accuracy]", "test_mednli[fake-a-no_label_rate]"]
    assert sorted(t["status"] for t in listed) == ["failed", "passed"]
    metrics = json.loads((reports / "html" / "widgets" / "metrics.json").read_text())
    assert {m["key"] for m in metrics["current"]} == {"fake-a.mednli.accuracy", "fake-a.mednli.no_label_rate"}
    assert {m["better"] for m in metrics["current"]} == {"higher", "lower"}
    history = (reports / "history.jsonl").read_text().splitlines()
    assert len(history) == 2 and "fake-a.mednli.accuracy" in history[-1]
