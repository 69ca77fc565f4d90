"""CI reports from hand-built outcomes: GitHub's job summary, workflow commands and comment,
OpenMetrics, JUnit properties (also under xdist), the checkpoint series, the history across
runs, and the example pipelines checked by linters made for them."""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from medgate.cli import allure_config, build_html, main
from medgate.core.errors import ConfigError, DataError
from medgate.core.outcome import Comparison, Outcome
from medgate.core.redact import redact
from medgate.judging.paired import judge
from medgate.judging.series import holm_across, rejudge_across
from medgate.reporting.github import (comment_marker, escape_data, escape_property, pr_comment, step_summary,
                                      workflow_commands, write_github)
from medgate.reporting.history import append_history, read_history, run_id, trend_rows, write_trend
from medgate.reporting.junit import junit_properties
from medgate.reporting.openmetrics import metrics_text, write_metrics
from medgate.reporting.series import best_by, latest_not_worse, parse_primary, series_rows, step_of, write_series
from tests.conftest import REPO

BIN = Path(sys.executable).parent


def comp(task="mednli", metric="accuracy", *, drop=0.0, low=-0.02, high=0.02, p=0.5, verdict="not worse",
         margin=0.03, reference="model base", **extra) -> Comparison:
    return Comparison(task=task, metric=metric, reference=reference, rule="non_inferiority", test="exact McNemar",
                      n_pairs=100, reference_value=0.6, candidate_value=0.6 - drop, drop=drop, drop_low=low,
                      drop_high=high, p_value=p, p_adjusted=p, margin=margin, verdict=verdict,
                      fails=verdict in ("worse", "inconclusive"), **extra)


def own(model, task, metric, value, status="pass", message="", threshold=0.5, **extra) -> Outcome:
    return Outcome(model=model, task=task, metric=metric, status=status, message=message or f"{model} {task} {metric}",
                   value=value, low=value - 0.1, high=value + 0.1, threshold=threshold, **extra)


def versus(model, c: Comparison, status="pass", message="", against="base") -> Outcome:
    return Outcome(model=model, task=c.task, metric=c.metric, status=status,
                   message=message or f"{model} {c.task} {c.metric} vs {against}", value=c.candidate_value,
                   comparison=c, against=against)


RUN = [
    own("ckpt", "mednli", "accuracy", 0.7),
    own("ckpt", "meqsum", "rougeL", 0.2, status="fail", message="ckpt meqsum rougeL = 0.2000 is below the floor 0.5000"),
    own("loose", "mednli", "accuracy", 0.4, status="no_threshold", threshold=None),
    versus("ckpt", comp(n_worse=3, n_better=5)),
    versus("ckpt", comp("meqsum", "rougeL", drop=0.02, low=-0.01, high=0.05, verdict="inconclusive"), status="known_gap",
           message="ckpt meqsum rougeL inconclusive [inconclusive allowed (models.toml): xfail]"),
]
HEADLINE = "medgate: FAILED (1 of 5 tests failed or errored)"


def test_step_summary_has_the_verdict_failures_not_gated_and_each_comparison_table():
    assert step_summary(RUN, HEADLINE, environ={}).splitlines() == [
        "## medgate: FAILED (1 of 5 tests failed or errored)",
        "",
        "NOT GATED: loose (no threshold, baseline or reference for any selected metric; --require-gate fails this)",
        "",
        "### Failed or errored gates",
        "",
        "- **FAIL** ckpt meqsum rougeL = 0.2000 is below the floor 0.5000",
        "",
        "### Known gaps (models.toml): 1",
        "",
        "- ckpt meqsum rougeL inconclusive [inconclusive allowed (models.toml): xfail]",
        "",
        "### Gates (thresholds and baselines)",
        "",
        "| model | task | metric | value | 95% CI | threshold | comparison | verdict |",
        "|---|---|---|---|---|---|---|---|",
        "| ckpt | mednli | accuracy | 0.7000 | 0.6000-0.8000 | >= 0.5000 | - | PASS |",
        "| ckpt | meqsum | rougeL | 0.2000 | 0.1000-0.3000 | >= 0.5000 | - | FAIL |",
        "",
        "### ckpt vs base",
        "",
        "| task | metric | reference | candidate | difference [95% CI] | margin | verdict | worse / better items | Holm p |",
        "|---|---|---|---|---|---|---|---|---|",
        "| mednli | accuracy | 0.6000 | 0.6000 | -0.0000 [-0.0200, +0.0200] | 0.0300 | not worse | 3 / 5 | 0.5 |",
        "| meqsum | rougeL | 0.6000 | 0.5800 | -0.0200 [-0.0500, +0.0100] | 0.0300 | inconclusive (xfail) | 0 / 0 | 0.5 |",
        "",
    ]


def test_one_error_per_failed_or_errored_gate_and_a_warning_per_allowed_inconclusive():
    errored = Outcome(model="ckpt", task="mednli", metric="f1", status="error", message="ckpt mednli: engine died")
    gap = own("ckpt", "mednli", "x", 0.1, status="known_gap", message="a known gap, not a comparison")
    assert workflow_commands([*RUN, errored, gap], environ={}) == [
        "::error title=medgate ckpt mednli f1::ckpt mednli: engine died",
        "::error title=medgate ckpt meqsum rougeL::ckpt meqsum rougeL = 0.2000 is below the floor 0.5000",
        "::warning title=medgate ckpt vs base meqsum rougeL::ckpt meqsum rougeL inconclusive [inconclusive allowed "
        "(models.toml): xfail]",
    ]


def test_an_output_or_file_name_cannot_inject_a_second_command(tmp_path):
    evil = own("ckpt", "mednli", "accuracy", 0.1, status="fail",
               message="bad output\n::error::injected\r\n::add-mask::x 100%0A")
    stream = io.StringIO()
    summary = tmp_path / "summary.md"
    write_github(tmp_path, [evil], HEADLINE, ["ckpt"], env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
                 stream=stream)
    lines = [line for line in stream.getvalue().splitlines() if line]
    assert lines == ["::error title=medgate ckpt mednli accuracy::bad output%0A::error::injected%0D%0A::add-mask::x 100%250A"]
    assert not any(line.startswith("::error::") for line in summary.read_text().splitlines())
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


@given(st.text())
def test_escaped_data_is_one_line_and_unescapes_to_the_text(text):
    escaped = escape_data(text)
    assert "\n" not in escaped and "\r" not in escaped
    assert escaped.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%") == text


def test_the_comment_starts_with_the_marker_and_a_message_cannot_forge_one():
    forged = own("ckpt", "mednli", "accuracy", 0.1, status="fail", message="x <!-- medgate:other --> <img src=y>")
    body = pr_comment([forged], HEADLINE, ["ckpt", "base", "ckpt"], environ={})
    assert body.splitlines()[0] == "<!-- medgate:base,ckpt -->" == comment_marker(["ckpt", "base"])
    assert body.count("<!--") == 1 and "<img" not in body and "&lt;img src=y>" in body


def test_the_comment_is_cut_by_whole_rows_under_the_limit_and_counts_them():
    many = [versus(f"c{i:03d}", comp(metric=f"m{j}")) for i in range(60) for j in range(40)]
    body = pr_comment(many, "medgate: PASSED", ["base"], environ={})
    assert len(body) <= 65536
    table_rows = [line for line in body.splitlines() if line.startswith("| mednli |")]
    left_out = int(re.search(r"_(\d+) of 2400 rows left out", body).group(1))
    assert left_out == 2400 - len(table_rows) and 0 < left_out < 2400
    assert all(line.endswith(" |") for line in body.splitlines() if line.startswith("| "))  # whole rows only
    assert "left out" not in pr_comment(many[:10], "medgate: PASSED", ["base"], environ={})
    small = pr_comment(many, "medgate: PASSED", ["base"], limit=3000, environ={})
    kept = len([line for line in small.splitlines() if line.startswith("| mednli |")])
    assert len(small) <= 3000 and f"_{2400 - kept} of 2400 rows left out" in small and 0 < kept < 40
    assert small.count("### ") == 1  # sections none of whose rows fit are left out whole


def test_no_token_or_url_credential_reaches_any_ci_output(tmp_path):
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "s.md"), "HF_TOKEN": "hf_plantedsecret1234",
           "MY_API_KEY": "k3y-planted-value"}
    leak = own("ckpt", "mednli", "accuracy", 0.1, status="error",
               message="server https://user:pa55word@gpu.internal/v1 said hf_plantedsecret1234 and k3y-planted-value; "
                       "ghp_abcdefghijklmnopqrstuvwxyz0123")
    stream = io.StringIO()
    write_github(tmp_path, [leak], HEADLINE, ["ckpt"], env=env, stream=stream)
    for text in (stream.getvalue(), (tmp_path / "s.md").read_text(), (tmp_path / "pr-comment.md").read_text()):
        for secret in ("pa55word", "user:", "hf_planted", "k3y-planted", "ghp_abc"):
            assert secret not in text
        assert "https://gpu.internal/v1" in text
    assert redact("Bearer abcdefgh123 ok", {}) == "Bearer *** ok"


def test_outside_github_actions_only_the_comment_file_is_written(tmp_path):
    stream = io.StringIO()
    written = write_github(tmp_path, RUN, HEADLINE, ["ckpt"], env={"GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")},
                           stream=stream)
    assert written == [tmp_path / "pr-comment.md"] and stream.getvalue() == "" and not (tmp_path / "s.md").exists()


def test_the_step_summary_is_appended_to_what_other_steps_wrote(tmp_path):
    summary = tmp_path / "s.md"
    summary.write_text("earlier step\n")
    stream = io.StringIO()
    write_github(tmp_path, RUN, HEADLINE, ["ckpt"], env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
                 stream=stream)
    text = summary.read_text()
    assert text.startswith("earlier step\n## medgate: FAILED") and text.count("### ckpt vs base") == 1
    assert [line.split("::")[1] for line in stream.getvalue().split("\n") if line] == ["error title=medgate ckpt meqsum rougeL",
                                                                                      "warning title=medgate ckpt vs base meqsum rougeL"]


def test_metrics_txt_parses_as_openmetrics_with_values_differences_and_escaped_labels(tmp_path):
    odd = own('we"ird\\name\nx', "mednli", "accuracy", 0.25)
    path = write_metrics(tmp_path, [*RUN, odd])
    text = path.read_text()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == {"medgate_metric_value", "medgate_comparison_difference", "medgate_gate_failed"}
    values = {(s.labels["model"], s.labels["task"], s.labels["metric"]): s.value for s in families["medgate_metric_value"].samples}
    assert values == {("ckpt", "mednli", "accuracy"): 0.7, ("ckpt", "meqsum", "rougeL"): 0.2, ("loose", "mednli", "accuracy"): 0.4,
                      ('we"ird\\name\nx', "mednli", "accuracy"): 0.25}
    diffs = {(s.labels["candidate"], s.labels["reference"], s.labels["metric"]): s.value
             for s in families["medgate_comparison_difference"].samples}
    assert diffs == {("ckpt", "base", "accuracy"): -0.0, ("ckpt", "base", "rougeL"): pytest.approx(-0.02)}
    failed = [s.labels.get("model") for s in families["medgate_gate_failed"].samples if s.value == 1]
    assert failed == ["ckpt"]
    assert families["medgate_metric_value"].type == "gauge"
    assert metrics_text([]) == "# EOF\n"


def test_junit_properties_of_a_comparison_and_of_an_own_gate():
    assert junit_properties(RUN[3]) == [
        ("medgate.verdict", "pass"), ("medgate.value", "0.6000"), ("medgate.reference", "model base"),
        ("medgate.difference", "-0.0000 [-0.0200, +0.0200]"), ("medgate.margin", "0.0300"),
        ("medgate.comparison_verdict", "not worse"), ("medgate.p_holm", "0.5")]
    lower = replace(RUN[0], higher_is_better=False)
    assert junit_properties(lower) == [("medgate.verdict", "pass"), ("medgate.value", "0.7000"),
                                       ("medgate.interval", "[0.6000, 0.8000]"), ("medgate.threshold", "<= 0.5000")]
    assert "medgate" not in {name for name, _ in junit_properties(RUN[0])}  # that key carries the Outcome JSON


@pytest.mark.parametrize("args", [(), ("-p", "xdist", "-n", "2")])
def test_user_properties_reach_the_junit_xml_also_under_xdist(pytester, args):
    properties = junit_properties(RUN[3])
    pytester.makepyfile(test_props=textwrap.dedent(f"""
        import pytest
        PROPS = {properties!r}

        @pytest.mark.parametrize("n", range(4))
        def test_gate(request, n):
            request.node.user_properties.extend(PROPS)  # what the plugin's TaskGate._record adds
            assert n != 3
    """))
    run = pytester.runpytest_subprocess if args else pytester.runpytest_inprocess  # xdist's workers are processes
    result = run("-p", "no:cacheprovider", "-p", "no:medgate", "--junitxml=junit.xml", *args)
    result.assert_outcomes(passed=3, failed=1)
    import xml.etree.ElementTree as ET

    cases = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    found = {case.get("name"): [(p.get("name"), p.get("value")) for p in case.iter("property")] for case in cases}
    assert sorted(found) == [f"test_gate[{n}]" for n in range(4)]
    assert all(props == properties for props in found.values())


@pytest.mark.parametrize(("name", "step"), [
    ("ckpt/step-500", 500), ("run3_step-1000", 1000), ("out/run-2/checkpoint-1500/", 1500), ("base", None),
    ("llama3-8b-ft-2", 2), ("c:\\ckpt\\step-7", 7),
])
def test_step_of_is_the_last_integer_of_the_last_path_component(name, step):
    assert step_of(name) == step


def series_run(verdicts: dict[str, tuple[str, float]]) -> list[Outcome]:
    """Checkpoints with (verdict, drop) on mednli accuracy and not worse on meqsum rougeL."""
    out = []
    for name, (verdict, drop) in verdicts.items():
        out.append(versus(name, comp(drop=drop, low=drop - 0.02, high=drop + 0.02, p=0.001, verdict=verdict)))
        out.append(versus(name, comp("meqsum", "rougeL", p=0.9)))
    return out


def test_series_orders_by_step_not_by_name_and_names_the_latest_not_worse():
    run = series_run({"step-1000": ("worse", 0.10), "step-200": ("better", -0.08), "step-300": ("better", -0.05),
                      "step-100": ("not worse", 0.0)})
    rows = series_rows(run, "base")
    assert [r.checkpoint for r in rows][::2] == ["step-100", "step-200", "step-300", "step-1000"]
    assert [r.step for r in rows][::2] == [100, 200, 300, 1000]
    assert latest_not_worse(rows) == "step-300"
    best = best_by(rows, ("mednli", "accuracy"))
    assert best is not None and best.checkpoint == "step-200"
    assert best_by(rows, ("mednli", "nope")) is None
    # models.toml's step wins over the name
    assert [r.checkpoint for r in series_rows(run, "base", {"step-100": 5000})][::2][-1] == "step-100"


def test_an_errored_checkpoint_is_never_the_latest_not_worse():
    run = series_run({"step-100": ("not worse", 0.0), "step-200": ("not worse", 0.0)})
    run.append(Outcome(model="step-200", task="medisumqa", metric="rougeL", status="error", message="died", against="base"))
    assert latest_not_worse(series_rows(run, "base")) == "step-100"


def test_holm_spans_every_checkpoint_and_metric():
    cs = [comp(p=p) for p in (0.01, 0.02, 0.03)]
    assert holm_across(cs) == pytest.approx([0.03, 0.04, 0.04])
    # alone each gain is significant (p < 0.05); among 6 comparisons the 0.02 one is not
    gains = [comp(drop=-0.1, low=-0.15, high=-0.05, p=p) for p in (0.001, 0.02)]
    judged = judge(gains, lambda t, m: ("non_inferiority", 0.03))
    assert [c.verdict for c in judged] == ["better", "better"]
    others = [comp("meqsum", "rougeL", p=0.9) for _ in range(4)]
    again = rejudge_across([*judge(gains, lambda t, m: ("non_inferiority", 0.03)), *others])
    assert [c.verdict for c in again[:2]] == ["better", "not worse"]
    assert again[1].p_adjusted == pytest.approx(0.02 * 5)
    with pytest.raises(ConfigError, match="different rules or margins"):
        rejudge_across([comp(margin=0.03), comp(margin=0.05)])


def test_write_series_gives_markdown_csv_and_one_panel_per_task(tmp_path):
    run = series_run({"step-100": ("not worse", 0.0), "step-200": ("better", -0.08), "step-300": ("not worse", 0.01)})
    written = write_series(tmp_path, run, "base", primary="mednli.accuracy")
    assert [p.name for p in written] == ["series-vs-base.md", "series-vs-base.csv", "series-vs-base.png"]
    md = written[0].read_text()
    assert "One Holm family spans every checkpoint and metric here (6 comparisons)" in md
    assert "- Latest checkpoint not worse on every gated metric: **step-300**" in md
    assert "- Best by mednli.accuracy among those: **step-200** (+0.0800" in md
    assert "| 200 | step-200 | mednli | accuracy |" in md
    csv_lines = written[1].read_text().splitlines()
    assert csv_lines[0].startswith("step,checkpoint,task,metric") and [line.split(",")[0] for line in csv_lines[1:]] == [
        "100", "100", "200", "200", "300", "300"]
    png = written[2].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    one_task = write_series(tmp_path / "one", [o for o in run if o.task == "mednli"], "base")[2].read_bytes()
    assert struct.unpack(">II", png[16:24])[1] > struct.unpack(">II", one_task[16:24])[1]  # two panels are taller
    with pytest.raises(ConfigError, match="TASK.METRIC"):
        parse_primary("accuracy")


def test_history_appends_runs_replaces_a_retried_one_and_writes_the_trend(tmp_path):
    file = tmp_path / "cache" / "trend.jsonl"
    append_history(file, RUN, "github-1-1", when="t1")
    append_history(file, [versus("ckpt", comp(drop=-0.01, low=-0.03, high=0.01))], "github-2-1", when="t2")
    append_history(file, [versus("ckpt", comp(drop=-0.02, low=-0.04, high=0.0))], "github-2-1", when="t2b")
    assert [r["run"] for r in read_history(file)] == ["github-1-1", "github-2-1"]
    assert [row[0] + " " + row[6] for row in trend_rows(read_history(file)) if row[5] == "accuracy"] == [
        "github-1-1 -0.0000", "github-2-1 +0.0200"]
    md, csv_path = write_trend(tmp_path, file)
    assert "| ckpt | base | mednli | accuracy | -0.0000 | +0.0200 |" in md.read_text()
    assert len(csv_path.read_text().splitlines()) == 1 + 3
    file.write_text(file.read_text() + "{not json\n")
    with pytest.raises(DataError, match=r"trend.jsonl, line 3: not a JSON line"):
        read_history(file)
    assert run_id({"GITHUB_RUN_ID": "7", "GITHUB_RUN_ATTEMPT": "2"}) == "github-7-2"
    assert run_id({"CI_PIPELINE_ID": "9"}) == "gitlab-9"


def test_medgate_trend_reads_the_summary_and_extends_the_history(tmp_path, monkeypatch, capsys):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "summary.json").write_text(json.dumps([o.to_dict() for o in RUN]))
    history = tmp_path / "cache" / "trend.jsonl"
    for number in (1, 2):
        monkeypatch.setenv("GITHUB_RUN_ID", str(number))
        assert main(["trend", "--reports-dir", str(reports), "--history", str(history)]) == 0
    assert len(read_history(history)) == 2 and (reports / "trend.md").exists()
    with pytest.raises(SystemExit):
        main(["trend", "--reports-dir", str(reports)])


def test_allure_history_lives_in_the_given_file_and_survives_a_fresh_reports_folder(tmp_path):
    history = tmp_path / "cache" / "allure.jsonl"
    config = json.loads(allure_config(tmp_path, history, 5).read_text())
    assert config["historyPath"] == str(history) and config["historyLimit"] == 5
    for run in range(2):  # each CI run starts with a fresh reports folder; the cache keeps the file
        reports = tmp_path / f"run{run}"
        results = reports / "allure-results"
        results.mkdir(parents=True)
        (results / f"{run}-result.json").write_text(json.dumps({
            "uuid": f"u{run}", "historyId": "h1", "name": "test_mednli[ckpt-accuracy]", "fullName": "t.test_mednli",
            "status": "passed", "stage": "finished", "start": 1000 + run, "stop": 2000 + run}))
        build_html(reports, history)
    assert len(history.read_text().splitlines()) == 2


EXAMPLES = REPO / "examples" / "ci"


def linter(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is missing: pip install -e '.[test]' (pyproject's test extra installs it)"
    return str(path)


def test_the_github_workflow_passes_zizmor_and_the_workflow_schema():
    workflow = EXAMPLES / "github-actions.yml"
    audit = subprocess.run([linter("zizmor"), "--offline", "--no-progress", str(workflow)], capture_output=True, text=True,
                           timeout=120)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    schema = subprocess.run([linter("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)],
                            capture_output=True, text=True, timeout=120)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    text = workflow.read_text()
    for needed in ("self-hosted", "scripts/setup", "--against base --require-gate", "--junitxml=", "actions/cache@",
                   "upload-artifact@", "medgate html --history", "pr-comment.md", "updateComment"):
        assert needed in text


def test_the_gitlab_pipeline_passes_the_gitlab_ci_schema():
    pipeline = EXAMPLES / "gitlab-ci.yml"
    result = subprocess.run([linter("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(pipeline)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    text = pipeline.read_text()
    for needed in ("tags:", "scripts/setup", "--against base --require-gate", "junit: reports/junit.xml",
                   "metrics: reports/metrics.txt", "cache:", "medgate html --history"):
        assert needed in text


def test_the_linters_reject_a_broken_pipeline(tmp_path):
    """They are not rubber stamps: a misspelt key fails each."""
    broken = tmp_path / "broken.yml"
    broken.write_text((EXAMPLES / "gitlab-ci.yml").read_text().replace("  script:\n", "  scripts:\n"))
    result = subprocess.run([linter("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(broken)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    workflow = tmp_path / "workflow.yml"
    workflow.write_text((EXAMPLES / "github-actions.yml").read_text().replace("runs-on:", "runs_on:"))
    audit = subprocess.run([linter("zizmor"), "--offline", "--no-progress", str(workflow)], capture_output=True, text=True,
                           timeout=120)
    assert audit.returncode != 0


def test_a_checkpoint_series_under_github_actions_end_to_end(pytester, monkeypatch):
    """Three fake checkpoints against their base, as a CI job runs them: the series report names
    the latest not-worse checkpoint, the step summary and the PR comment are written, one
    ::error per failed gate, and metrics.txt parses as OpenMetrics."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from tests.conftest import copy_clinical_tests, write_models

    copy_clinical_tests(pytester, "test_mednli.py")
    write_models(pytester.path / "models.toml", """
        [models.base]
        path = "."
        backend = "fake"
        fake_reply = "ENTAILMENT"
        [models.step-100]
        path = "."
        backend = "fake"
        fake_reply = "ENTAILMENT"
        [models.step-200]
        path = "."
        backend = "fake"
        fake_reply = "NEUTRAL"
        [models.step-300]
        path = "."
        backend = "fake"
        fake_reply = "The answer is ENTAILMENT."
        [models.step-300.thresholds]
        mednli = { accuracy = 0.99 }
        """)
    summary_file = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests_medical", "--models-file", "models.toml",
                                           "--model", "step-300", "--model", "step-100", "--model", "step-200",
                                           "--against", "base", "--primary", "mednli.accuracy")
    reports = pytester.path / "reports"
    series = (reports / "comparisons" / "series-vs-base.md").read_text()
    assert series.index("step-100") < series.index("step-200") < series.index("step-300")
    # step-100 is the base itself (equal identity: a difference of exactly 0); step-200 and step-300
    # differ from it, and 33 items cannot show them not worse within 3 points
    assert "Latest checkpoint not worse on every gated metric: **step-100**" in series
    assert "Best by mednli.accuracy among those: **step-100**" in series
    assert (reports / "comparisons" / "series-vs-base.csv").exists()
    assert (reports / "comparisons" / "series-vs-base.png").exists()
    errors = [line for line in result.stdout.lines if line.startswith("::error ")]
    assert any("step-300 mednli accuracy" in line for line in errors), result.stdout.str()
    comment = (reports / "pr-comment.md").read_text()
    assert comment.startswith("<!-- medgate:") and "base" in comment.splitlines()[0]
    assert "vs base" in summary_file.read_text() or "base" in summary_file.read_text()
    families = {f.name for f in text_string_to_metric_families((reports / "metrics.txt").read_text())}
    assert "medgate_metric_value" in families and "medgate_comparison_difference" in families
