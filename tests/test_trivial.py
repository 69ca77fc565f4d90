"""Trivial baselines: what a constant, empty or echoed answer scores through each task's own scorer
(hand-computed on small items and on the shipped fixtures), the summary's section beside the
model's value, and a constant-answer model failing smollm2's thresholds in a whole session."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medgate.core.outcome import Outcome
from medgate.core.types import Sample, ScoringConfig
from medgate.metrics.text import score_texts
from medgate.models.engines.fake import whitespace_context
from medgate.pipeline.plan import plan_task
from medgate.reporting.summary import write_summary
from medgate.reporting.trivial import flags, trivial_lines
from medgate.tasks import TASKS
from medgate.tasks.trivial import best_baseline, most_frequent, trivial_answers, trivial_baselines
from tests.conftest import FIXTURES, REPO, copy_clinical_tests, outcomes, write_models


def nli(pair: str, gold: str) -> Sample:
    return Sample(id=pair, fields={"sentence1": f"premise {pair}", "sentence2": f"hypothesis {pair}"}, reference=gold)


def fixture_plan(name: str):
    task = TASKS[name]
    return plan_task(task, FIXTURES, None, whitespace_context(8192) if task.prepare else None)


@given(st.lists(st.sampled_from("abc"), min_size=1))
def test_most_frequent_is_a_most_counted_value_and_the_first_met_of_a_tie(values):
    best = most_frequent(values)
    assert values.count(best) == max(values.count(v) for v in values)
    assert values.index(best) == min(values.index(v) for v in set(values) if values.count(v) == values.count(best))


def test_most_frequent_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        most_frequent([])


def test_mednli_baselines_on_three_items_by_hand():
    items = [nli("1", "entailment"), nli("2", "neutral"), nli("3", "neutral")]
    chats = [TASKS["mednli"].build_prompt(s, []) for s in items]
    answers = trivial_answers(TASKS["mednli"], items, chats)
    assert answers == {"majority": ["NEUTRAL"] * 3, "empty": [""] * 3,
                       "echo": ["premise 1\nhypothesis 1", "premise 2\nhypothesis 2", "premise 3\nhypothesis 3"]}
    assert trivial_baselines(TASKS["mednli"], items, chats) == {
        "majority": {"accuracy": 2 / 3, "no_label_rate": 0.0},
        "empty": {"accuracy": 0.0, "no_label_rate": 1.0},
        "echo": {"accuracy": 0.0, "no_label_rate": 1.0},
    }


def test_a_task_without_echo_or_constants_echoes_the_last_user_message_and_has_no_majority():
    """The generic fallback (a new task that declares neither): free-text references that are all
    different give no majority; one that repeats is the majority."""
    import dataclasses

    bare = dataclasses.replace(TASKS["meqsum"], echo=None, constants=None)
    items = [Sample(id=str(i), fields={"question": f"q{i}", "raw": {}}, reference=ref) for i, ref in enumerate("xyx")]
    chats = [[{"role": "system", "content": "s"}, {"role": "user", "content": f"input {i}"}] for i in range(3)]
    answers = trivial_answers(bare, items, chats)
    assert answers["echo"] == ["input 0", "input 1", "input 2"] and answers["majority"] == ["x"] * 3
    assert "majority" not in trivial_answers(bare, items[:2], chats[:2])
    with pytest.raises(ValueError, match="2 items but 3 prompts"):
        trivial_answers(bare, items[:2], chats)


def test_text_scoring_without_model_metrics_loads_no_encoder_and_says_so():
    batch = score_texts(["a b c"], ["a b d"], ScoringConfig(model_metrics=False), with_umls=True)
    assert batch.per_item == [{"rouge1": pytest.approx(2 / 3, abs=1e-12), "rouge2": pytest.approx(0.5, abs=1e-12),
                               "rougeL": pytest.approx(2 / 3, abs=1e-12)}]
    assert set(batch.not_computed) == {"bertscore_p", "bertscore_r", "bertscore_f1", "umls_p", "umls_r", "umls_f1"}


def test_shipped_fixtures_mednli_majority_is_entailment_12_of_33():
    plan = fixture_plan("mednli")
    found = trivial_baselines(plan.task, plan.items, plan.chats)
    assert [s.reference for s in plan.items].count("entailment") == 12 and len(plan.items) == 33
    assert found["majority"] == {"accuracy": pytest.approx(12 / 33, abs=1e-12), "no_label_rate": 0.0}


def test_shipped_fixtures_longhealth_constants_f_and_c():
    """75 prompts per sub-task; task 3's gold is always F (75 of 225 prompts, the most frequent),
    and C is the gold of 4 of the 15 questions (20 task-1 prompts), tied with E and met first."""
    plan = fixture_plan("longhealth")
    answers = trivial_answers(plan.task, plan.items, plan.chats)
    assert answers["majority"][0] == "The correct answer is F:"
    assert answers["majority_a_to_e"][0] == "The correct answer is C:"
    found = trivial_baselines(plan.task, plan.items, plan.chats)
    assert found["majority"] == {"accuracy_task1": 0.0, "accuracy_task2": 0.0, "accuracy_task3": 1.0}
    assert found["majority_a_to_e"] == {"accuracy_task1": pytest.approx(20 / 75, abs=1e-12),
                                        "accuracy_task2": pytest.approx(20 / 75, abs=1e-12), "accuracy_task3": 0.0}
    assert found["empty"] == found["echo"] == {"accuracy_task1": 0.0, "accuracy_task2": 0.0, "accuracy_task3": 0.0}


def test_shipped_fixtures_medisumcode_constant_i10():
    """I10 is gold in 4 of 22 items, with 2, 4, 3 and 3 gold codes: precision 4/22, recall
    (1/2 + 1/4 + 1/3 + 1/3)/22, F1 (2/3 + 2/5 + 1/2 + 1/2)/22; every constant code is valid."""
    plan = fixture_plan("medisumcode")
    found = trivial_baselines(plan.task, plan.items, plan.chats)
    assert trivial_answers(plan.task, plan.items, plan.chats)["majority"][0] == "ICD-10 Codes: I10"
    assert found["majority"]["exact_p"] == pytest.approx(4 / 22, abs=1e-12)
    assert found["majority"]["exact_r"] == pytest.approx((1 / 2 + 1 / 4 + 1 / 3 + 1 / 3) / 22, abs=1e-12)
    assert found["majority"]["exact_f1"] == pytest.approx((2 / 3 + 2 / 5 + 1 / 2 + 1 / 2) / 22, abs=1e-12)
    assert found["majority"]["valid_ratio"] == 1.0 and found["empty"]["valid_ratio"] == 0.0


def test_shipped_fixtures_summaries_empty_scores_zero_and_echo_scores_rouge():
    for name in ("meqsum", "problem_summary", "medisumqa"):
        plan = fixture_plan(name)
        found = trivial_baselines(plan.task, plan.items, plan.chats)
        assert set(found) == {"empty", "echo"}, name  # all references differ: no majority
        assert found["empty"] == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}, name
        assert 0.1 < found["echo"]["rouge1"] < 0.3, name  # the question or note shares words with its summary


def test_the_floors_of_smollm2_sit_above_the_trivial_baselines_where_they_can():
    """models.toml: each floor named here is above every trivial baseline on the shipped data
    (and below smollm2's measured value, README); the others are documented as not separable."""
    thresholds = tomllib.loads((REPO / "models.toml").read_text())["models"]["smollm2"]["thresholds"]
    separating = {"meqsum": ("rouge1", "rougeL"), "medisumqa": ("rouge1", "rouge2", "rougeL"),
                  "longhealth": ("accuracy_task1", "accuracy_task2")}
    for task, metrics in separating.items():
        plan = fixture_plan(task)
        found = trivial_baselines(plan.task, plan.items, plan.chats)
        for metric in metrics:
            name, best = best_baseline(found, metric)
            assert thresholds[task][metric] > best, (task, metric, name, best)


def test_flags_name_the_baseline_that_a_value_or_threshold_does_not_beat():
    trivial = {"majority": {"accuracy": 0.36, "no_label_rate": 0.0}, "empty": {"accuracy": 0.0, "no_label_rate": 1.0}}
    low = Outcome(model="m", task="mednli", metric="accuracy", status="pass", message="", value=0.30, threshold=0.15,
                  provenance={"trivial": trivial})
    high = Outcome(model="m", task="mednli", metric="accuracy", status="pass", message="", value=0.80, threshold=0.50,
                   provenance={"trivial": trivial})
    ceiling = Outcome(model="m", task="mednli", metric="no_label_rate", status="pass", message="", value=0.1,
                      threshold=0.2, higher_is_better=False, provenance={"trivial": trivial})
    assert flags(low) == ["no better than majority", "threshold passes majority"]
    assert flags(high) == []
    assert flags(ceiling) == ["no better than majority", "threshold passes majority"]  # 0.0 no-label: the best
    lines = trivial_lines([low, ceiling])
    assert lines[1] == "## Trivial baselines"
    assert "| model | task | metric | value | majority | empty | threshold | flag |" in lines
    both = "no better than majority; threshold passes majority"
    assert f"| m | mednli | accuracy | 0.3000 | 0.3600 | 0.0000 | >= 0.1500 | {both} |" in lines
    assert trivial_lines([Outcome(model="m", task="t", metric="x", status="pass", message="", value=1.0)]) == []


def test_the_summary_shows_the_section_beside_the_verdicts(tmp_path):
    trivial = {"majority": {"accuracy": 0.36}, "echo": {"accuracy": 0.0}}
    o = Outcome(model="m", task="mednli", metric="accuracy", status="pass", message="", value=0.5, threshold=0.4,
                provenance={"trivial": trivial})
    text = write_summary(tmp_path, [o]).read_text()
    assert "## Trivial baselines" in text
    assert "| m | mednli | accuracy | 0.5000 | 0.3600 | 0.0000 | >= 0.4000 | - |" in text


def test_a_constant_answer_model_fails_smollm2s_thresholds_on_the_default_run(pytester, tmp_path):
    """The default run's six clinical modules, with a fake model that answers ENTAILMENT to every
    prompt and smollm2's thresholds and known gaps (copied from models.toml: a fake model cannot
    `inherits = "smollm2"`, which would hand it vLLM options). It must fail; MedNLI alone passes,
    as a constant label beats smollm2 there (README)."""
    smollm2 = tomllib.loads((REPO / "models.toml").read_text())["models"]["smollm2"]
    tables = "".join(f"\n[models.constant.{table}]\n" + "".join(
        f"{task} = {json.dumps(value) if isinstance(value, str) else _inline(value)}\n"
        for task, value in smollm2[table].items()) for table in ("thresholds", "expected_failures"))
    models = write_models(tmp_path / "models.toml", f'[models.constant]\npath = "."\nbackend = "fake"\n'
                                                    f'fake_reply = "ENTAILMENT"\n{tables}')
    suite = copy_clinical_tests(pytester, *sorted(p.name for p in (REPO / "tests_medical").glob("test_*.py")))
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", f"--models-file={models}", f"--data-dir={FIXTURES}",
                                        f"--reports-dir={suite.path / 'reports'}", "tests_medical", "--model", "constant")
    assert result.ret == 1
    found = {(o["task"], o["metric"]): o for o in outcomes(suite.path / "reports")}
    failed = {key for key, o in found.items() if o["status"] == "fail"}
    # every floor of the summary tasks and MeDiSumCode's valid_ratio: ROUGE 0, no code
    assert {("meqsum", "rouge1"), ("meqsum", "rougeL"), ("medisumqa", "rouge1"), ("problem_summary", "rouge1"),
            ("medisumcode", "valid_ratio")} <= failed
    assert found[("mednli", "accuracy")]["status"] == "pass"  # 12/33 >= 0.15: MedNLI cannot tell (README)
    assert found[("mednli", "accuracy")]["value"] == pytest.approx(12 / 33, abs=1e-12)
    assert {found[("longhealth", f"accuracy_task{i}")]["status"] for i in (1, 2, 3)} == {"known_gap"}
    summary = (suite.path / "reports" / "summary.md").read_text()
    assert "## Trivial baselines" in summary
    row = "| constant | mednli | accuracy | 0.3636 | 0.3636 | 0.0000 | 0.0000 | - | >= 0.1500 |"
    assert f"{row} no better than majority; threshold passes majority |" in summary


def _inline(table: dict) -> str:
    return "{ " + ", ".join(f"{k} = {v}" for k, v in table.items()) + " }"
