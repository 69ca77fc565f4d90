"""A team's own tasks, gated like the built-in ones (issue: medgate opened to teams' own tasks).

Plumbing tests with the fake engine, in pytester folders that stand for a team's repository:
its own test module with a TaskSpec, its own models.toml and data file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, outcomes, write_models

EXAMPLE = REPO / "examples" / "own-task"

MODELS = """
default = "nurse"
[models.nurse]
path = "."
backend = "fake"
fake_reply = "Level 3"
[models.nurse.thresholds]
ed_triage = { accuracy = 0.10, undertriage_rate = 0.90 }
[models.cautious]
path = "."
backend = "fake"
fake_reply = "Level 2"
[models.mute]
path = "."
backend = "fake"
fake_reply = "I cannot say."
[models.mute.thresholds]
ed_triage = { accuracy = 0.10 }
"""


def team_project(pytester: pytest.Pytester, models: str = MODELS, module: str | None = None) -> pytest.Pytester:
    """The example project's layout: tests/test_triage.py, data/triage.jsonl, models.toml, and
    the ini key that names the registry."""
    shutil.copytree(EXAMPLE / "data", pytester.path / "data")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_triage.py").write_text(
        module if module is not None else (EXAMPLE / "tests" / "test_triage.py").read_text(encoding="utf-8"),
        encoding="utf-8")
    write_models(pytester.path / "models.toml", models)
    pytester.makeini('[pytest]\ntestpaths = tests\nmedgate_models_file = models.toml\n')
    return pytester


def by_metric(pytester: pytest.Pytester, **where: str | None) -> dict[str, dict]:
    found = outcomes(pytester.path / "reports")
    return {o["metric"]: o for o in found if all(o.get(k) == v for k, v in where.items())}


def test_own_task_is_gated_on_its_own_thresholds(pytester):
    team_project(pytester)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--model", "nurse", "--model", "mute")
    scored = by_metric(pytester, model="nurse")
    assert scored["accuracy"]["status"] == "pass" and scored["accuracy"]["threshold"] == 0.10
    assert scored["undertriage_rate"]["status"] == "pass" and not scored["undertriage_rate"]["higher_is_better"]
    assert scored["no_answer_rate"]["status"] == "no_threshold"
    mute = by_metric(pytester, model="mute")
    assert mute["accuracy"]["status"] == "fail" and mute["accuracy"]["value"] == 0.0  # no level: never right
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    # the run record holds the team's task with per-item scores (ids and numbers) for the release record
    record = json.loads(next((pytester.path / "reports" / "runs").glob("*.json")).read_text())
    assert len(record["items"]["nurse"]["ed_triage"]) == 37  # 40 cases, 3 few-shot examples
    assert record["criteria"]["nurse"]["thresholds"] == {"ed_triage": {"accuracy": 0.1, "undertriage_rate": 0.9}}


def test_against_gives_a_comparison_verdict_with_the_teams_margins(pytester):
    team_project(pytester, MODELS + '[models.nurse.margins]\ned_triage = { accuracy = 0.5, undertriage_rate = 0.5 }\n')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--model", "nurse", "--against", "cautious")
    compared = by_metric(pytester, model="nurse", against="cautious")
    accuracy = compared["accuracy"]["comparison"]
    assert accuracy["margin"] == 0.5 and accuracy["reference"] == "model cautious"
    assert accuracy["verdict"] in ("not worse", "better")
    # "Level 3" is less urgent than "Level 2" wherever the truth is 1 or 2: more under-triage, beyond 0.5? no
    assert compared["undertriage_rate"]["comparison"]["margin"] == 0.5
    assert "KeyError" not in result.stdout.str() and "Traceback" not in result.stdout.str()


def test_expected_failures_and_data_dir_with_only_the_teams_file(pytester):
    team_project(pytester, MODELS + '[models.mute.expected_failures]\ned_triage = "answers in words"\n')
    real = pytester.mkdir("real")
    shutil.copy(pytester.path / "data" / "triage.jsonl", real / "triage.jsonl")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--model", "mute", "--data-dir", str(real))
    mute = by_metric(pytester, model="mute")
    assert mute["accuracy"]["status"] == "known_gap"
    assert mute["accuracy"]["provenance"]["dataset"] == str(real / "triage.jsonl")  # --data-dir's file wins
    assert mute["accuracy"]["provenance"]["data_source"] == "user"
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


@pytest.mark.parametrize(("table", "entry", "words"), [
    ("thresholds", "triage = { accuracy = 0.5 }", "models.nurse.thresholds.triage: unknown task (known: mednli, "),
    ("margins", "ed_triage = { f1 = 0.1 }",
     "models.nurse.margins.ed_triage.f1: unknown metric (known for ed_triage: accuracy, undertriage_rate, no_answer_rate)"),
    ("thresholds", "ed_triage = { accuracy = 1.5 }", "models.nurse.thresholds.ed_triage.accuracy: 1.5 is outside"),
])
def test_criteria_are_checked_against_the_collected_tasks(pytester, table, entry, words):
    team_project(pytester, MODELS + f"[models.nurse.{table}]\n{entry}\n".replace("[models.nurse.thresholds]\n", "")
                 if table != "thresholds" else MODELS.replace("ed_triage = { accuracy = 0.10, undertriage_rate = 0.90 }", entry))
    for extra in ([], ["-n", "2"]):  # the same usage error under xdist
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--model", "nurse", *extra)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
        shown = result.stdout.str() + result.stderr.str()
        assert words in shown and "ed_triage" in shown and "Traceback" not in shown
        assert not (pytester.path / "reports" / "summary.md").exists()  # nothing ran, nothing reported


def test_two_tasks_of_one_name_are_an_error_naming_both(pytester):
    team_project(pytester)
    clash = (EXAMPLE / "tests" / "test_triage.py").read_text().replace('name="ed_triage"', 'name="mednli"')
    (pytester.path / "tests" / "test_clash.py").write_text(clash)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--model", "nurse")
    shown = result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "two tasks are named 'mednli': one in medgate's built-in tasks, one in module test_clash" in shown


BROKEN = '''
import pytest
from medgate import MetricSpec, Sample, TaskSpec

def build(sample, shots):
    return [{"role": "user", "content": sample.fields["q"]}]

TASK = TaskSpec(name="broken", title="Broken", filename="broken.jsonl", path=PATH, fewshot=0,
                max_new_tokens=4, metrics={"m": MetricSpec("m")}, load_samples=LOADER, build_prompt=build,
                score_sample=SCORER, prompt_version="b1")

@pytest.mark.parametrize("metric", TASK.metric_names)
def test_broken(medgate_task, metric):
    medgate_task.gate(metric)
'''
LOAD_OK = 'lambda path: [Sample(id=str(i), fields={"q": "x"}, reference="y") for i in range(3)]'


@pytest.mark.parametrize(("path", "loader", "scorer", "words"), [
    ('"../data/triage.jsonl"', "lambda path: 1 / 0", 'lambda o, s: {"m": 1.0}',
     "task broken: Broken data could not be read (ZeroDivisionError: division by zero)"),
    ('"../data/triage.jsonl"', LOAD_OK, 'lambda o, s: {"m": 1.0, "extra": 0.0}',
     "task broken: the scorer emitted undeclared metric(s) extra for item 0"),
    ('"../data/triage.jsonl"', LOAD_OK, 'lambda o, s: {"m": "high"}',
     "task broken: the scorer gave item 0 metric 'm' the value 'high' (str), not a number"),
    ('"../data/absent.jsonl"', LOAD_OK, 'lambda o, s: {"m": 1.0}',
     "absent.jsonl: task broken: its data file (TaskSpec path) does not exist"),
])
def test_a_broken_own_task_errors_alone_in_one_line(pytester, path, loader, scorer, words):
    team_project(pytester)
    body = BROKEN.replace("PATH", path).replace("LOADER", loader).replace("SCORER", scorer)
    (pytester.path / "tests" / "test_broken.py").write_text(body)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--model", "nurse")
    shown = result.stdout.str()
    assert words in shown, shown
    assert "Traceback" not in shown and "raise " not in shown
    assert by_metric(pytester, model="nurse")["accuracy"]["status"] == "pass"  # the other task went on
    broken = [o for o in outcomes(pytester.path / "reports") if o["task"] == "broken"]
    assert broken and all(o["status"] == "error" for o in broken)


def test_a_task_that_is_not_a_taskspec_is_one_clear_error(pytester):
    team_project(pytester)
    (pytester.path / "tests" / "test_notask.py").write_text(
        "TASK = {'name': 'x'}\n\ndef test_x(medgate_task):\n    medgate_task.gate('m')\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--model", "nurse")
    shown = result.stdout.str()
    assert "test_notask: medgate_task needs a module-level TASK = TaskSpec(...) (TASK is a dict, not a medgate.TaskSpec)" in shown
    assert "Traceback" not in shown
    assert by_metric(pytester, model="nurse")["accuracy"]["status"] == "pass"


def test_team_data_in_a_folder_named_fixtures_is_not_attached(pytester):
    """"Synthetic" is decided by the file's hash, not by its folder's name."""
    team_project(pytester)
    fixtures = pytester.mkdir("fixtures")
    shutil.copy(pytester.path / "data" / "triage.jsonl", fixtures / "triage.jsonl")  # the default data folder
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--model", "nurse")
    prov = by_metric(pytester, model="nurse")["accuracy"]["provenance"]
    assert prov["dataset"] == str(fixtures / "triage.jsonl") and prov["data_source"] == "user"
    attached = [p for p in (pytester.path / "reports" / "allure-results").glob("*-attachment*")] \
        if (pytester.path / "reports" / "allure-results").exists() else []
    texts = " ".join(p.read_text(errors="replace") for p in attached)
    assert "unresponsive after collapsing" not in texts


def test_a_task_file_is_collected_gated_and_compared(pytester):
    shutil.copy(REPO / "examples" / "task-files" / "followup.task.toml", pytester.path)
    shutil.copy(REPO / "examples" / "task-files" / "followup.csv", pytester.path)
    write_models(pytester.path / "models.toml", """
        [models.good]
        path = "."
        backend = "fake"
        fake_reply = "Follow-up: cardiology; 2 weeks"
        [models.good.thresholds]
        followup = { set_f1 = 0.9 }
        [models.other]
        path = "."
        backend = "fake"
        fake_reply = "Follow-up: nephrology; 4 weeks"
        """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "followup.task.toml", "--model", "good",
                                           "--against", "other")
    mine = by_metric(pytester, model="good", against=None)
    assert mine["set_f1"]["status"] == "fail" and mine["set_f1"]["threshold"] == 0.9
    versus = by_metric(pytester, model="good", against="other")
    assert versus["set_f1"]["comparison"]["n_pairs"] == 38
    assert result.ret == pytest.ExitCode.TESTS_FAILED and "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("extra", [[], ["-n", "2"]])
def test_medgate_wakes_when_collection_finds_its_fixture(pytester, extra):
    """No medgate option and no ini key: the project's models.toml in the rootdir, and a test
    that uses medgate_model, turn medgate on (on xdist's controller at the first verdict)."""
    team_project(pytester)
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *extra)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    scored = by_metric(pytester, model="nurse")  # the registry's default model
    assert scored["accuracy"]["status"] == "pass"
    assert "medgate verdicts" in result.stdout.str()


@pytest.mark.parametrize("extra", [[], ["-n", "2"]])
def test_a_broken_registry_found_on_waking_is_one_usage_error(pytester, extra):
    team_project(pytester, MODELS + "[models.nurse.colour]\nx = 1\n")
    pytester.makeini("[pytest]\ntestpaths = tests\n")  # medgate wakes on collection alone
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *extra)
    shown = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, shown
    assert "ConfigError: " in shown and "models.nurse.colour: unknown key" in shown
    assert "Traceback" not in shown and "_hookexec" not in shown


def test_two_task_files_collect_side_by_side(pytester):
    for name in ("meqsum", "mednli"):
        shutil.copy(REPO / "examples" / "task-files" / f"{name}.task.toml", pytester.path)
    for path in pytester.path.glob("*.task.toml"):  # their data: the shipped fixtures, by name
        path.write_text(path.read_text().replace("../../fixtures/", str(REPO / "fixtures") + "/"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q", "--model", "smollm2")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    ids = [line for line in result.stdout.lines if "::" in line]
    assert any("test_meqsum_file[smollm2-rougeL]" in i for i in ids) and any("test_mednli_file[smollm2-accuracy]" in i for i in ids)


def test_own_task_data_parallel_limit_and_rejudge(pytester):
    """Two workers share the team task's prompts (data-parallel: more workers than models), with
    --limit; --rejudge then recomputes the same verdicts from the cache without an engine."""
    team_project(pytester)
    first = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--model", "nurse", "-n", "2", "--limit", "10")
    assert first.ret == pytest.ExitCode.OK, first.stdout.str()
    scored = by_metric(pytester, model="nurse")
    assert scored["accuracy"]["provenance"]["n_items"] == 10 and scored["accuracy"]["provenance"]["limit"] == 10
    again = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--model", "nurse", "--rejudge", "--limit", "10")
    assert again.ret == pytest.ExitCode.OK, again.stdout.str()
    rejudged = by_metric(pytester, model="nurse")
    assert {m: o["value"] for m, o in rejudged.items()} == {m: o["value"] for m, o in scored.items()}
    assert rejudged["accuracy"]["provenance"]["cached_items"] == 10


def test_a_scorer_that_rejects_an_empty_answer_leaves_only_the_trivial_baselines_out(pytester):
    """The trivial baselines are a report figure: a team's scorer that fails on the empty
    baseline answer does not turn its scored task into an error."""
    team_project(pytester)
    body = BROKEN.replace("PATH", '"../data/triage.jsonl"').replace("LOADER", LOAD_OK).replace(
        "SCORER", 'lambda o, s: {"m": 1.0 / len(o)}')
    (pytester.path / "tests" / "test_broken.py").write_text(body)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--model", "nurse")
    broken = by_metric(pytester, model="nurse", task="broken")
    assert broken["m"]["status"] == "no_threshold" and broken["m"]["value"] == pytest.approx(1 / len("Level 3"))
    note = broken["m"]["provenance"]["notes"]["trivial baselines"]
    assert note == "not computed: ZeroDivisionError: float division by zero"
    assert "trivial" not in broken["m"]["provenance"]
