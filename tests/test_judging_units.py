"""Fast unit tests of judging/ (baseline files, comparison bookkeeping, verdict messages) without a
pytest session: the mutation run (scripts/mutation) relies on them to see what the session tests
see only slowly."""

from __future__ import annotations

import json

import pytest

from medgate.core.errors import BaselineError, ConfigError
from medgate.core.types import ItemRecord, TaskResult
from medgate.judging.baselines import (baseline_path, baseline_reference, check_baseline, check_baseline_fits,
                                       load_baseline, save_baseline)

PROV = {"dataset_hash": "sha256:x", "prompt_version": "p1", "decoding": {"max_tokens": 20}, "limit": 3,
        "model_location": "/home/me/w", "dataset": "/data/x.jsonl", "reference_dir": "/ref", "prompt_source": "s"}


def result(model: str = "m", task: str = "mednli") -> TaskResult:
    items = [ItemRecord(id="a", scores={"accuracy": 1.0}, prompt_tokens=1, completion_tokens=1, output="secret"),
             ItemRecord(id="b", scores={"accuracy": 0.0}, prompt_tokens=1, completion_tokens=1, output=""),
             ItemRecord(id="c", scores={}, prompt_tokens=1, completion_tokens=0, output="", error="boom")]
    return TaskResult(task=task, model=model, metrics={"accuracy": 0.5}, items=items, provenance=dict(PROV))


def test_a_saved_baseline_holds_scores_and_portable_provenance_only(tmp_path):
    path = save_baseline(tmp_path, "v1", result(), {"medgate": "0.1"})
    assert path == tmp_path / "v1" / "m" / "mednli.json" == baseline_path(tmp_path, "v1", "m", "mednli")
    body = json.loads(path.read_text(encoding="utf-8"))
    assert (body["name"], body["model"], body["task"], body["metrics"]) == ("v1", "m", "mednli", {"accuracy": 0.5})
    assert body["items"] == [{"id": "a", "scores": {"accuracy": 1.0}}, {"id": "b", "scores": {"accuracy": 0.0}}]
    assert "secret" not in path.read_text(encoding="utf-8")  # outputs stay out
    assert path.read_text(encoding="utf-8") == json.dumps(body, indent=1, sort_keys=True)  # stable, diffable text
    assert body["provenance"] == {"dataset_hash": "sha256:x", "prompt_version": "p1", "decoding": {"max_tokens": 20},
                                  "limit": 3, "prompt_source": "s", "packages": {"medgate": "0.1"}}
    ref = baseline_reference(tmp_path, "v1", "m", "mednli")
    assert ref.label == "baseline v1" and ref.scores == {"a": {"accuracy": 1.0}, "b": {"accuracy": 0.0}}
    assert ref.provenance["dataset_hash"] == "sha256:x"
    assert baseline_reference(tmp_path, "v1", "m", "mednli", label="m@v1").label == "m@v1"


def test_missing_unreadable_and_foreign_baselines_are_named(tmp_path):
    with pytest.raises(BaselineError, match=r"mednli\.json: no baseline 'v1' for model m and task mednli; save one "
                                            r"with --save-baseline v1$"):
        load_baseline(tmp_path, "v1", "m", "mednli")
    path = baseline_path(tmp_path, "v1", "m", "mednli")
    path.parent.mkdir(parents=True)
    path.write_text("{", encoding="utf-8")
    with pytest.raises(BaselineError, match=r"mednli\.json: unreadable baseline \("):
        load_baseline(tmp_path, "v1", "m", "mednli")
    for body in ([], {"items": {}, "provenance": {}}, {"items": []}, {"provenance": {}}):
        path.write_text(json.dumps(body), encoding="utf-8")
        with pytest.raises(BaselineError, match=r"mednli\.json: not a medgate baseline file$"):
            load_baseline(tmp_path, "v1", "m", "mednli")
    path.write_text(json.dumps({"items": [], "provenance": {}}), encoding="utf-8")
    assert load_baseline(tmp_path, "v1", "m", "mednli") == {"items": [], "provenance": {}}
    with pytest.raises(ConfigError, match=r"^baseline name '\.\./x': use "):
        baseline_path(tmp_path, "../x", "m", "mednli")
    with pytest.raises(ConfigError, match=r"^baseline name '\.\./x': use "):
        check_baseline(tmp_path, "../x", ["m"])


def test_check_baseline_lists_what_is_saved(tmp_path):
    with pytest.raises(ConfigError, match=r"^--baseline v1: no such baseline in .* \(saved: none\); save one with "
                                          r"--save-baseline v1 on the run to compare with$"):
        check_baseline(tmp_path / "nowhere", "v1", ["m"])
    save_baseline(tmp_path, "v0", result(), {})
    save_baseline(tmp_path, "v2", result("n"), {})
    (tmp_path / "stray.txt").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\(saved: v0, v2\)"):
        check_baseline(tmp_path, "v1", ["m"])
    save_baseline(tmp_path, "v2", result("k"), {})
    check_baseline(tmp_path, "v2", ["n", "k"])
    with pytest.raises(ConfigError, match=r"^--baseline v2: holds no results of model m \(it holds: k, n\)$"):
        check_baseline(tmp_path, "v2", ["n", "m"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"\(it holds: none\)$"):
        check_baseline(tmp_path, "empty", ["m"])


def test_check_baseline_fits_compares_what_this_run_expects(tmp_path):
    save_baseline(tmp_path, "v1", result(), {})
    check_baseline_fits(tmp_path, "v1", "m", {"mednli": {"dataset_hash": "sha256:x", "limit": 3},
                                              "meqsum": {"dataset_hash": "other"}})  # meqsum: not in the baseline
    with pytest.raises(ConfigError, match=r"^--against m@v1: .*mednli\.json has dataset_hash 'sha256:x', this run "
                                          r"'sha256:y'; a baseline of other data, prompts or items cannot be compared$"):
        check_baseline_fits(tmp_path, "v1", "m", {"mednli": {"dataset_hash": "sha256:y"}})
    with pytest.raises(ConfigError, match="has limit 3, this run 5"):
        check_baseline_fits(tmp_path, "v1", "m", {"mednli": {"limit": 5}})
    old = result()
    old.provenance.pop("limit")
    save_baseline(tmp_path, "old", old, {})
    check_baseline_fits(tmp_path, "old", "m", {"mednli": {"limit": 5}})  # written before the limit was recorded
    with pytest.raises(ConfigError, match="has dataset_hash 'sha256:x', this run 'other'"):  # the keys after it count
        check_baseline_fits(tmp_path, "old", "m", {"mednli": {"limit": 5, "dataset_hash": "other"}})
    with pytest.raises(ConfigError, match="has dataset_hash"):  # a task the baseline lacks does not end the check
        check_baseline_fits(tmp_path, "v1", "m", {"meqsum": {}, "mednli": {"dataset_hash": "other"}})
    with pytest.raises(ConfigError, match="has missing None, this run 'p1'"):  # a key the baseline lacks
        check_baseline_fits(tmp_path, "old", "m", {"mednli": {"missing": "p1"}})


# --- judging/paired.py: the comparison record, field by field ----------------------------------

import dataclasses  # noqa: E402

import numpy as np  # noqa: E402

from medgate.core.outcome import Comparison  # noqa: E402
from medgate.judging.paired import BaselineMismatch, Reference, check_comparable, compare, compare_scores, judge  # noqa: E402
from medgate.judging.verdict import check, item_errors  # noqa: E402
from medgate.metrics.stats import paired_bootstrap  # noqa: E402
from medgate.tasks import mednli, meqsum  # noqa: E402

RUN_PROV = {"dataset_hash": "sha256:x", "prompt_version": "p1", "decoding": {"max_tokens": 20}}


def run_of(task, scores: dict[str, dict[str, float]], model: str = "m", **provenance) -> TaskResult:
    items = [ItemRecord(id=i, scores=s, prompt_tokens=1, completion_tokens=1, output="") for i, s in scores.items()]
    return TaskResult(task=task.TASK.name, model=model, metrics={}, items=items, provenance={**RUN_PROV, **provenance})


def test_a_continuous_comparison_records_every_field():
    # rouge1 on 4 items; drops (reference - candidate): a 0.1, b -0.3, c 0.0, d 0.4; rouge2 only on a and b of
    # the reference (an item one side lacks is left out); rougeL nowhere (skipped, later metrics still compared)
    reference = {"a": {"rouge1": 0.5, "rouge2": 0.2}, "b": {"rouge1": 0.2, "rouge2": 0.4}, "c": {"rouge1": 0.7},
                 "d": {"rouge1": 0.9}}
    candidate = {"a": {"rouge1": 0.4, "rouge2": 0.1}, "b": {"rouge1": 0.5}, "c": {"rouge1": 0.7, "rouge2": 0.3},
                 "d": {"rouge1": 0.5, "rouge2": 0.0}, "e": {"bertscore_f1": 0.5}}
    comps = {c.metric: c for c in compare_scores(meqsum.TASK, reference, candidate, against="model r", seed=3)}
    assert set(comps) == {"rouge1", "rouge2"}
    r1 = comps["rouge1"]
    assert (r1.task, r1.reference, r1.rule, r1.test, r1.n_pairs) == ("meqsum", "model r", "", "sign-flip", 4)
    assert (r1.reference_value, r1.candidate_value) == pytest.approx((2.3 / 4, 2.1 / 4), rel=1e-12)
    assert r1.drop == pytest.approx(0.05, rel=1e-9) and r1.higher_is_better is True and r1.identical is False
    assert (r1.n_worse, r1.n_better, r1.flips_worse, r1.flips_better) == (2, 1, ("d", "a"), ("b",))
    assert r1.spread == pytest.approx(np.std([0.1, -0.3, 0.0, 0.4], ddof=1), rel=1e-12)
    direct = paired_bootstrap([0.5, 0.2, 0.7, 0.9], [0.4, 0.5, 0.7, 0.5], seed=3)
    assert (r1.drop_low, r1.drop_high, r1.p_value) == pytest.approx((-direct.high, -direct.low, direct.p_value), rel=1e-12)
    r2 = comps["rouge2"]  # one pair (a): no spread, the interval widened within [0, 1]
    assert (r2.n_pairs, r2.spread, r2.drop) == (1, 0.0, pytest.approx(0.1))
    assert (r2.drop_low, r2.drop_high) == pytest.approx((0.025 * 0.1 - 0.975, 0.025 * 0.1 + 0.975), rel=1e-9)
    # the default seed is 0
    default = compare_scores(meqsum.TASK, reference, candidate, against="model r")[0]
    seeded = paired_bootstrap([0.5, 0.2, 0.7, 0.9], [0.4, 0.5, 0.7, 0.5], seed=0)
    assert (default.drop_low, default.drop_high) == pytest.approx((-seeded.high, -seeded.low), rel=1e-12)


def test_many_continuous_flips_keep_the_largest_twenty_in_order():
    reference = {f"i{k:02d}": {"rouge1": 1.0} for k in range(30)}
    candidate = {f"i{k:02d}": {"rouge1": 1.0 - (k + 1) / 100} for k in range(30)}  # i29 dropped most
    (c,) = compare_scores(meqsum.TASK, reference, candidate, against="r")
    assert c.n_worse == 30 and c.flips_worse == tuple(f"i{k:02d}" for k in range(29, 9, -1))
    (g,) = compare_scores(meqsum.TASK, candidate, reference, against="r")
    assert g.n_better == 30 and g.flips_better == tuple(f"i{k:02d}" for k in range(29, 9, -1))


def test_binary_flips_list_every_item_and_bertscore_bounds_widen_the_tie():
    before = {f"i{k:02d}": {"accuracy": 1.0} for k in range(25)} | {"z": {"accuracy": 0.0}, "y": {"accuracy": 1.0}}
    after = {f"i{k:02d}": {"accuracy": 0.0} for k in range(25)} | {"z": {"accuracy": 1.0}, "y": {"accuracy": 1.0}}
    (acc,) = compare_scores(mednli.TASK, before, after, against="r")
    assert acc.test == "exact McNemar" and acc.n_worse == 25 and len(acc.flips_worse) == 25  # no cut at 20
    assert acc.flips_better == ("z",) and acc.n_better == 1
    # BERTScore lies in [-1, 1]: 3 tied items give u * [-2, 2], u = 1 - 0.025 ** (1/3) = 0.707598
    tie = {str(k): {"bertscore_f1": 0.8} for k in range(3)}
    (b,) = compare_scores(meqsum.TASK, tie, tie, against="r")
    assert (b.drop_low, b.drop_high) == pytest.approx((-2 * 0.707598, 2 * 0.707598), abs=1e-6)
    (same,) = compare_scores(meqsum.TASK, tie, tie, against="r", identical=True)
    assert (same.drop, same.drop_low, same.drop_high, same.p_value, same.identical) == (0.0, 0.0, 0.0, 1.0, True)


def test_compare_passes_label_and_seed():
    rng = np.random.default_rng(9)
    before, after = rng.uniform(0, 1, size=30), rng.uniform(0, 1, size=30)
    ref_run = run_of(meqsum, {str(k): {"rouge1": v} for k, v in enumerate(before)}, model="r")
    cand = run_of(meqsum, {str(k): {"rouge1": v} for k, v in enumerate(after)})
    ref = Reference("model r", ref_run.provenance, {i.id: i.scores for i in ref_run.items})
    (c,) = compare(ref, cand, meqsum.TASK)
    (c5,) = compare(ref, cand, meqsum.TASK, seed=5)
    direct = [paired_bootstrap(before, after, seed=s) for s in (0, 5)]
    assert c.reference == "model r" and (c.drop_low, c5.drop_low) == pytest.approx((-direct[0].high, -direct[1].high))
    assert c.drop_low != c5.drop_low
    scores_of = ({str(k): {"rouge1": v} for k, v in enumerate(before)}, {str(k): {"rouge1": v} for k, v in enumerate(after)})
    (default,) = compare_scores(meqsum.TASK, *scores_of, against="r")  # the default seed is 0
    assert default.drop_low == c.drop_low


def test_lower_is_better_binary_gains_and_two_item_spread():
    before = {str(k): {"no_label_rate": 1.0} for k in range(25)}
    after = {str(k): {"no_label_rate": 0.0} for k in range(25)}
    (rate,) = compare_scores(mednli.TASK, before, after, against="r")
    assert rate.higher_is_better is False and rate.drop == -1.0 and rate.n_better == 25 and len(rate.flips_better) == 25
    (two,) = compare_scores(meqsum.TASK, {"a": {"rouge1": 0.5}, "b": {"rouge1": 0.5}},
                            {"a": {"rouge1": 0.4}, "b": {"rouge1": 0.7}}, against="r")
    assert two.spread == pytest.approx(np.std([0.1, -0.2], ddof=1), rel=1e-12)


def test_mismatched_runs_are_refused_with_both_values():
    ref_run = run_of(meqsum, {"a": {"rouge1": 0.1}}, model="r", notes={"bertscore_encoder": "minilm"})
    cand = run_of(meqsum, {"a": {"rouge1": 0.2}}, notes={"bertscore_encoder": "scibert"})
    ref = Reference("model r", ref_run.provenance, {"a": {"rouge1": 0.1}})
    with pytest.raises(BaselineMismatch, match=r"^m meqsum: this run differs from model r: BERTScore encoder scibert, "
                                                r"not minilm; compare runs of the same data and prompts"):
        check_comparable(ref, cand)
    for encoders in (("minilm", "minilm"), (None, "scibert"), ("minilm", None)):
        r = Reference("model r", {**RUN_PROV, "notes": {"bertscore_encoder": encoders[0]}}, {"a": {}})
        check_comparable(r, run_of(meqsum, {"a": {}}, notes={"bertscore_encoder": encoders[1]}))  # no error
    other = Reference("model r", {**RUN_PROV, "prompt_version": "p0"}, {"a": {}})
    with pytest.raises(BaselineMismatch, match=r"^m meqsum: this run differs from model r: prompt version p1, not p0; compare"):
        check_comparable(other, cand)


def comparison(**fields) -> Comparison:
    base = dict(task="t", metric="m", reference="model r", rule="", test="sign-flip", n_pairs=50, reference_value=0.5,
                candidate_value=0.4, drop=0.1, drop_low=0.05, drop_high=0.15, p_value=0.001, spread=0.2)
    return Comparison(**{**base, **fields})


def test_judge_asks_the_rule_per_task_and_metric_and_records_it():
    asked = []

    def rule(task, metric):
        asked.append((task, metric))
        return ("significant_drop", 0.02)

    (c,) = judge([comparison()], rule)
    assert asked == [("t", "m")] and (c.rule, c.margin, c.verdict, c.fails) == ("significant_drop", 0.02, "regressed", True)
    (ok,) = judge([comparison(drop=0.01)], rule)
    assert (ok.verdict, ok.fails) == ("no regression", False)
    (ni,) = judge([comparison()], lambda t, m: ("non_inferiority", 0.03))
    assert (ni.rule, ni.margin, ni.verdict) == ("non_inferiority", 0.03, "worse")


@pytest.mark.parametrize(("fields", "rule", "verdict"), [
    (dict(p_value=0.05), "significant_drop", "no regression"),  # p = alpha is not below alpha
    (dict(drop=0.02), "significant_drop", "no regression"),  # a drop equal to the tolerance is within it
    (dict(drop_low=0.03, drop_high=0.08), "non_inferiority", "inconclusive"),  # low end on the margin: not "worse"
    (dict(drop=-0.1, drop_low=-0.2, drop_high=0.0), "non_inferiority", "not worse"),  # high end 0: not "better"
    (dict(drop=0.0, drop_low=-0.01, drop_high=0.02), "non_inferiority", "not worse"),  # significant, yet no gain
])
def test_judge_at_its_boundaries(fields, rule, verdict):
    margin = 0.02 if rule == "significant_drop" else 0.03
    (c,) = judge([comparison(**fields)], lambda t, m: (rule, margin))
    assert c.verdict == verdict


# --- judging/verdict.py: the outcome record and its messages -----------------------------------


def scored(value, intervals=None, not_computed=None, errors=(), provenance=None) -> TaskResult:
    items = [ItemRecord(id=str(i), scores={}, prompt_tokens=40 + i, completion_tokens=1, output="",
                        error=errors[i] if i < len(errors) else None) for i in range(3)]
    return TaskResult(task="mednli", model="m", metrics={} if value is None else {"accuracy": value, "no_label_rate": value},
                      items=items, intervals=intervals or {}, not_computed=not_computed or {},
                      provenance=provenance if provenance is not None else {"fewshot_ids": [1, 2], "dataset_hash": "h"})


def test_an_outcome_carries_the_evidence():
    spec = mednli.TASK.metrics["accuracy"]
    comp = judge([comparison(drop=0.0, drop_low=-0.01, drop_high=0.01, p_value=1.0)],
                 lambda t, m: ("non_inferiority", 0.03))[0]
    out = check(scored(0.6, {"accuracy": (0.5, 0.7)}), spec, 0.55, comparison=comp, against="r")
    assert (out.model, out.task, out.metric, out.value, out.threshold, out.low, out.high) == (
        "m", "mednli", "accuracy", 0.6, 0.55, 0.5, 0.7)
    assert (out.gate_on, out.higher_is_better, out.comparison, out.against) == ("point", True, comp, "r")
    assert out.provenance == {"dataset_hash": "h"}  # few-shot ids stay out
    assert out.status == "pass" and out.message == (
        "m mednli accuracy = 0.6000 (95% CI 0.5000 to 0.7000): meets the floor 0.5500; " + comp.describe())
    drop = judge([comparison(drop=0.0, p_value=1.0)], lambda t, m: ("significant_drop", 0.02))[0]
    passed = check(scored(0.6), spec, None, comparison=drop)
    assert passed.message == ("m mednli accuracy = 0.6000: no regression (t m drop 0.0000, Holm p = 1, "
                              "tolerance 0.0200)")
    regressed = judge([comparison()], lambda t, m: ("significant_drop", 0.02))[0]
    failed = check(scored(0.6), spec, 0.7, comparison=regressed)
    assert failed.message == ("m mednli accuracy = 0.6000 is below the floor 0.7000; and regressed against the "
                              "baseline: " + regressed.describe())
    worse = judge([comparison()], lambda t, m: ("non_inferiority", 0.03))[0]
    assert check(scored(0.6), spec, None, comparison=worse).message == "m mednli accuracy = 0.6000 " + worse.describe()


def test_ceilings_and_the_messages_without_a_verdict():
    rate = mednli.TASK.metrics["no_label_rate"]
    out = check(scored(0.1, {"no_label_rate": (0.05, 0.2)}), rate, 0.15)
    assert (out.higher_is_better, out.gate_on) == (False, "point")
    assert check(scored(0.1, {"no_label_rate": (0.05, 0.2)}), rate, 0.15, gate_on="interval").gate_on == "interval"
    assert out.status == "pass" and out.message.endswith(": meets the ceiling 0.1500")
    by_interval = check(scored(0.1, {"no_label_rate": (0.05, 0.2)}), rate, 0.15, gate_on="interval")
    assert by_interval.status == "fail" and by_interval.message == (
        "m mednli no_label_rate = 0.1000 (95% CI 0.0500 to 0.2000) has its 95% upper bound 0.2000 above the ceiling 0.1500")
    assert check(scored(0.15), rate, 0.15).status == "pass"  # the ceiling itself passes
    assert check(scored(0.2), rate, 0.15).message == "m mednli no_label_rate = 0.2000 is above the ceiling 0.1500"
    none = check(scored(0.4), mednli.TASK.metrics["accuracy"], None)
    assert none.message == "m mednli accuracy = 0.4000 (no threshold set for this model)"
    missing = check(scored(None, not_computed={"accuracy": "scispaCy is not installed"}), mednli.TASK.metrics["accuracy"], 0.5)
    assert missing.message == "m mednli accuracy: not computed: scispaCy is not installed"
    empty = check(scored(None), mednli.TASK.metrics["accuracy"], 0.5)
    assert empty.message == "m mednli accuracy: not computed: no items were scored"


def test_item_errors_name_the_shared_prompt_when_every_prompt_is_too_long():
    long = ["prompt of 50 tokens does not fit the context of 32"] * 3
    assert item_errors(scored(0.5, errors=long)) == (
        "every one of the 3 prompts is longer than the context (the shortest has 40 tokens): the system prompt and "
        "the few-shot examples (1, 2) alone may not fit; first: item 0: " + long[0])
    partial = item_errors(scored(0.5, errors=long[:2]))
    assert partial == "2 of 3 items could not be generated (first: item 0: " + long[0] + ")"
    no_shots = item_errors(scored(0.5, errors=long, provenance={}))
    assert no_shots.startswith("3 of 3 items could not be generated")
    distinct = item_errors(scored(0.5, errors=[f"prompt {i} does not fit the context" for i in range(3)]))
    assert distinct.endswith("first: item 0: prompt 0 does not fit the context")
    other = item_errors(scored(0.5, errors=["boom", "x does not fit the context", "y does not fit the context"]))
    assert other == "3 of 3 items could not be generated (first: item 0: boom)"
    assert item_errors(scored(0.5)) is None
    second = ["", "b does not fit the context", "c does not fit the context"]
    errs = scored(0.5, errors=["a does not fit the context", *second[1:]])
    errs.items[0] = dataclasses.replace(errs.items[0], prompt_tokens=99)
    assert "(the shortest has 41 tokens)" in item_errors(errs)


def test_a_models_result_as_reference_keeps_its_scored_items():
    from medgate.judging.paired import reference_of

    result = run_of(meqsum, {"a": {"rouge1": 0.5}, "b": {"rouge1": 0.2}}, model="r")
    result.items.append(ItemRecord(id="c", scores={}, prompt_tokens=1, completion_tokens=0, output="", error="boom"))
    ref = reference_of(result, "model r")
    assert (ref.label, ref.provenance) == ("model r", result.provenance)
    assert ref.scores == {"a": {"rouge1": 0.5}, "b": {"rouge1": 0.2}}  # the item that could not run is left out
