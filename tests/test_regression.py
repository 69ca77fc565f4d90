"""Regression verdicts: a planted drop fails, noise passes, mismatched baselines are refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medgate.core.types import ItemRecord, TaskResult
from medgate.judging.paired import BaselineMismatch, Reference, compare
from medgate.judging.paired import judge as judge_by
from medgate.judging.verdict import check
from medgate.tasks import mednli, meqsum

PROV = {"dataset_hash": "sha256:x", "prompt_version": "p1", "decoding": {"max_tokens": 20}}


def run(task, per_item: list[dict[str, float]], model: str = "m") -> TaskResult:
    items = [ItemRecord(id=str(i), scores=s, prompt_tokens=1, completion_tokens=1, output="") for i, s in enumerate(per_item)]
    return TaskResult(task=task.TASK.name, model=model, metrics=task.TASK.aggregate(per_item), items=items, provenance=dict(PROV))


def baseline_of(result: TaskResult) -> Reference:
    return Reference("baseline 'b'", dict(result.provenance), {i.id: dict(i.scores) for i in result.items})


def judge(comparisons, tolerance):
    """The significant-drop rule with a tolerance per (task, metric)."""
    return judge_by(comparisons, lambda task, metric: ("significant_drop", tolerance(task, metric)))


def nli(correct: list[int]) -> list[dict[str, float]]:
    return [{"accuracy": float(c), "no_label_rate": 0.0} for c in correct]


def no_tolerance(task: str, metric: str) -> float:
    return 0.0


def test_planted_accuracy_regression_fails_with_drop_interval_and_p():
    rng = np.random.default_rng(1)
    before = (rng.uniform(size=400) < 0.7).astype(int)
    after = before.copy()
    after[np.flatnonzero(before)[:60]] = 0  # 60 right answers turn wrong: a 15-point drop
    (acc, _) = judge(compare(baseline_of(run(mednli, nli(before))), run(mednli, nli(after)), mednli.TASK), no_tolerance)
    assert acc.test == "exact McNemar" and acc.fails
    assert acc.drop == pytest.approx(0.15) and acc.drop_low < 0.15 < acc.drop_high
    assert acc.p_value == pytest.approx(2 * 0.5**60, rel=1e-9, abs=0)  # 1.7e-18: a default approx would pass 0
    verdict = check(run(mednli, nli(after)), mednli.TASK.metrics["accuracy"], 0.1, comparison=acc)
    assert verdict.status == "fail"
    assert "regressed against the baseline: mednli accuracy dropped by 0.1500 (95% CI" in verdict.message
    assert "exact McNemar p = " in verdict.message and "Holm-adjusted p" in verdict.message


def test_noise_only_change_passes():
    rng = np.random.default_rng(2)
    before = (rng.uniform(size=400) < 0.7).astype(int)
    after = before.copy()
    flip = rng.choice(400, size=20, replace=False)  # 20 answers flip either way
    after[flip] = 1 - after[flip]
    (acc, _) = judge(compare(baseline_of(run(mednli, nli(before))), run(mednli, nli(after)), mednli.TASK), no_tolerance)
    assert not acc.fails and acc.p_adjusted > 0.05


def test_tolerance_absorbs_a_significant_but_small_drop():
    # a drop of about 0.01 that varies from item to item (sd 0.01): real evidence on 300 items, not a
    # constant shift whose differences would all be equal
    rng = np.random.default_rng(3)
    base = [{"rouge1": v, "rouge2": v, "rougeL": v, "bertscore_p": v, "bertscore_r": v, "bertscore_f1": v}
            for v in rng.uniform(0.3, 0.5, size=300)]
    worse = [{k: v - 0.01 + rng.normal(0, 0.01) for k, v in s.items()} for s in base]
    comps = compare(baseline_of(run(meqsum, base)), run(meqsum, worse), meqsum.TASK)
    assert all(c.test == "sign-flip" and c.p_value < 0.01 and c.spread > 0.005 for c in comps)
    assert all(0 < c.drop_low < c.drop < c.drop_high < 0.02 for c in comps)
    assert all(c.fails for c in judge(comps, no_tolerance))
    assert not any(c.fails for c in judge(comps, lambda t, m: 0.02))


def test_a_one_item_drop_is_never_significant():
    # one item: ROUGE 0.9 -> 0.1, MedNLI right -> wrong. Sign-flip p = 1 (both signs reach |0.8|); McNemar p = 1
    rouge = compare(baseline_of(run(meqsum, [{"rouge1": 0.9}])), run(meqsum, [{"rouge1": 0.1}]), meqsum.TASK)
    (judged,) = judge(rouge, no_tolerance)
    assert judged.p_value == 1.0 and judged.drop == pytest.approx(0.8) and not judged.fails
    acc, _ = judge(compare(baseline_of(run(mednli, nli([1]))), run(mednli, nli([0])), mednli.TASK), no_tolerance)
    assert acc.p_value == 1.0 and acc.drop == 1.0 and not acc.fails
    # the non-inferiority rule: not significant, so never "worse"; the interval is too wide for "not worse"
    (ni_rouge,) = judge_by(rouge, ni)
    assert ni_rouge.verdict == "inconclusive" and ni_rouge.fails


@pytest.mark.parametrize(("n", "significant"), [(5, False), (6, True)])
def test_equal_drops_become_significant_at_six_items(n, significant):
    # n items each 0.3 lower: sign-flip p = 2^(1-n): 0.0625 at 5 items, 0.03125 at 6
    comps = compare(baseline_of(run(meqsum, [{"rouge1": 0.5}] * n)), run(meqsum, [{"rouge1": 0.2}] * n), meqsum.TASK)
    (judged,) = judge(comps, no_tolerance)
    assert judged.p_value == pytest.approx(2.0 ** (1 - n), rel=1e-9, abs=0)
    assert judged.fails is significant and judged.drop_high > judged.drop_low


def test_different_models_tied_at_zero_on_every_item_are_inconclusive():
    # two different models (no shared generation identity) that both score ROUGE 0 on 20 items: the
    # differences are all 0, but 20 items cannot exclude that up to u = 1 - 0.025 ** (1/20) = 0.168434 of
    # items differ by up to 1: drop interval [-0.168434, 0.168434], beyond the 0.03 margin
    zeros = [{"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}] * 20
    comps = compare(baseline_of(run(meqsum, zeros, model="a")), run(meqsum, zeros, model="b"), meqsum.TASK)
    assert all(not c.identical for c in comps)
    for c in judge_by(comps, ni):
        assert (c.drop, c.p_value) == (0.0, 1.0)
        assert (c.drop_low, c.drop_high) == pytest.approx((-0.168434, 0.168434), abs=1e-6)
        assert c.verdict == "inconclusive" and c.fails
    # the same model on both sides (equal generation identity) keeps its exact 0 and is not worse
    same = run(meqsum, zeros)
    same.provenance["generation_identity"] = "sha256:same"
    for c in judge_by(compare(baseline_of(same), same, meqsum.TASK), ni):
        assert c.identical and (c.drop_low, c.drop_high) == (0.0, 0.0) and c.verdict == "not worse"
    # enough tied items do show "not worse": 400 items, u = 1 - 0.025 ** (1/400) = 0.009180 < 0.03
    many = [{"rouge1": 0.0}] * 400
    (c,) = judge_by(compare(baseline_of(run(meqsum, many, model="a")), run(meqsum, many, model="b"), meqsum.TASK), ni)
    assert c.drop_high == pytest.approx(0.009180, abs=1e-6) and c.verdict == "not worse"


def test_lower_is_better_metrics_regress_when_they_rise():
    before = [{"accuracy": 1.0, "no_label_rate": 0.0}] * 100
    after = [{"accuracy": 1.0, "no_label_rate": 1.0 if i < 30 else 0.0} for i in range(100)]
    comps = {c.metric: c for c in judge(compare(baseline_of(run(mednli, before)), run(mednli, after), mednli.TASK), no_tolerance)}
    assert comps["no_label_rate"].drop == pytest.approx(0.3) and comps["no_label_rate"].fails
    assert not comps["accuracy"].fails


def test_holm_correction_spares_a_marginal_drop_among_many_metrics():
    # 8 of 100 answers turn wrong, none the other way: McNemar p = 2 * 0.5**8 = 0.0078, alone significant
    before = [1] * 100
    after = [0] * 8 + [1] * 92
    single = judge(compare(baseline_of(run(mednli, nli(before))), run(mednli, nli(after)), mednli.TASK), no_tolerance)
    assert single[0].fails
    many = judge(single + [dataclasses.replace(single[0], metric=f"m{i}", p_value=0.5) for i in range(10)], no_tolerance)
    # 12 comparisons: the smallest p is multiplied by 12 -> 0.094, no longer significant
    assert many[0].p_adjusted == pytest.approx(12 * 2 * 0.5**8) and not many[0].fails


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda b: b.provenance.update(dataset_hash="sha256:other"), "data file .*, not other"),
        (lambda b: b.provenance.update(prompt_version="p0"), "prompt version .*, not p0"),
        (lambda b: b.scores.pop("9"), "baseline 'b' scored 9 items, this run 10"),
    ],
)
def test_different_items_or_data_are_refused(change, words):
    result = run(mednli, nli([1, 0] * 5))
    baseline = baseline_of(result)
    change(baseline)
    with pytest.raises(BaselineMismatch, match=words):
        compare(baseline, result, mednli.TASK)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=5, max_size=60))
def test_identical_runs_never_regress(correct):
    result = run(mednli, nli(correct))
    comps = judge(compare(baseline_of(result), result, mednli.TASK), no_tolerance)
    assert all(c.drop == 0 and not c.fails for c in comps)


def test_gate_on_interval_uses_the_bound_on_the_threatening_side():
    result = run(mednli, nli([1] * 60 + [0] * 40))
    result.intervals = {"accuracy": (0.50, 0.70), "no_label_rate": (0.0, 0.0)}
    spec = mednli.TASK.metrics["accuracy"]
    assert check(result, spec, 0.55).status == "pass"  # the point estimate 0.6 clears 0.55
    failed = check(result, spec, 0.55, gate_on="interval")
    assert failed.status == "fail" and "95% lower bound 0.5000 below the floor 0.5500" in failed.message
    assert check(result, spec, 0.45, gate_on="interval").status == "pass"


def ni(task: str, metric: str) -> tuple[str, float]:
    return ("non_inferiority", 0.03)


def comparison(drop: float, low: float, high: float, p: float, spread: float = 0.3):
    from medgate.core.outcome import Comparison

    return Comparison(task="mednli", metric="accuracy", reference="model r", rule="", test="exact McNemar", n_pairs=100,
                      reference_value=0.6, candidate_value=0.6 - drop, drop=drop, drop_low=low, drop_high=high,
                      p_value=p, spread=spread)


@pytest.mark.parametrize(("drop", "low", "high", "p", "verdict", "fails"), [
    (-0.10, -0.15, -0.05, 0.001, "better", False),       # a significant gain
    (0.00, -0.02, 0.02, 1.0, "not worse", False),         # the worst end (0.02) within the margin (0.03)
    (0.00, -0.02, 0.03, 1.0, "not worse", False),         # on the margin itself
    (0.10, 0.05, 0.15, 0.001, "worse", True),             # the whole interval beyond the margin, significant
    (0.02, -0.01, 0.05, 0.30, "inconclusive", True),      # the interval straddles the margin
    (0.10, 0.05, 0.15, 0.20, "inconclusive", True),       # beyond the margin but not significant after Holm
    (-0.10, -0.15, -0.05, 0.20, "not worse", False),      # a gain that is not significant is still not worse
])
def test_non_inferiority_verdicts(drop, low, high, p, verdict, fails):
    (judged,) = judge_by([comparison(drop, low, high, p)], ni)
    assert (judged.verdict, judged.fails, judged.margin) == (verdict, fails, 0.03)
    assert (judged.items_to_decide is not None) == (verdict == "inconclusive")


def test_holm_runs_across_the_family_of_a_comparison():
    # one p of 0.02 is significant alone, not among 5 comparisons (0.02 * 5 = 0.1)
    alone = judge_by([comparison(0.10, 0.05, 0.15, 0.02)], ni)
    family = judge_by([comparison(0.10, 0.05, 0.15, 0.02)] + [comparison(0.0, -0.01, 0.01, 0.9)] * 4, ni)
    assert alone[0].verdict == "worse" and family[0].verdict == "inconclusive"
    assert family[0].p_adjusted == pytest.approx(0.1)


def test_a_planted_drop_on_few_items_is_inconclusive_and_sized():
    before = [1] * 20 + [0] * 13
    after = [0] * 4 + [1] * 16 + [0] * 13  # four right answers lost
    (acc, _) = judge_by(compare(baseline_of(run(mednli, nli(before))), run(mednli, nli(after)), mednli.TASK), ni)
    assert acc.verdict == "inconclusive" and acc.fails
    # spread of the per-item drops (4 ones, 29 zeros): sd = 0.3314; distance |-4/33 + 0.03| = 0.0912
    assert acc.spread == pytest.approx(np.std([1] * 4 + [0] * 29, ddof=1))
    assert acc.items_to_decide == int(np.ceil((1.959964 * acc.spread / (4 / 33 - 0.03)) ** 2))
