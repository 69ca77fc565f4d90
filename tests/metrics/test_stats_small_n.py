"""Paired differences at any n: the sign-flip p-value never claims more than n items allow, and the
interval never has zero width between sides that are not identical by construction. Expected
values are enumerated by hand in the comments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medgate.metrics import stats
from medgate.metrics.stats import paired_bootstrap, sign_flip_p, unseen_share


def exact(p: float) -> object:
    """p-values compared relatively: the default absolute tolerance (1e-12) would pass any tiny p."""
    return pytest.approx(p, rel=1e-9, abs=0)


@pytest.mark.parametrize(("n", "p"), [(1, 1.0), (2, 0.5), (5, 0.0625), (6, 0.03125), (10, 2.0**-9), (40, 2.0**-39)])
def test_equal_nonzero_differences_give_exactly_two_to_the_one_minus_n(n, p):
    # n equal drops d: of the 2^n sign assignments only "all +" and "all -" reach |sum| = n |d|: p = 2 / 2^n
    diff = paired_bootstrap([0.7] * n, [0.4] * n)
    assert diff.p_value == exact(p)
    assert sign_flip_p([-0.3] * n) == exact(p) and sign_flip_p([0.25] * n) == exact(p)


def test_a_one_item_drop_is_never_significant():
    diff = paired_bootstrap([1.0], [0.0])
    assert diff.p_value == 1.0
    # u = 0.975: the interval is (1 - u) * (-1) + u * [-1, 1] = [-1, 0.95]
    assert (diff.delta, diff.low) == (-1.0, -1.0) and diff.high == pytest.approx(0.95, rel=1e-12)


def test_five_equal_drops_are_not_significant_six_are():
    assert paired_bootstrap([0.5] * 5, [0.2] * 5).p_value == exact(0.0625)  # > 0.05
    assert paired_bootstrap([0.5] * 6, [0.2] * 6).p_value == exact(0.03125)  # < 0.05


@pytest.mark.parametrize("n", [1, 2, 5, 6, 30])
def test_all_zero_differences_between_different_models_are_not_a_point(n):
    # u = 1 - 0.025 ** (1/n); the interval of the mean difference is u * [-1, 1] for scores in [0, 1]:
    # n = 1: +-0.975, n = 2: +-0.841886, n = 5: +-0.521824, n = 6: +-0.459258, n = 30: +-0.115703
    diff = paired_bootstrap([0.0] * n, [0.0] * n)
    u = 1 - 0.025 ** (1 / n)
    assert diff.delta == 0.0 and diff.p_value == 1.0
    assert (diff.low, diff.high) == pytest.approx((-u, u), rel=1e-12)
    assert {1: 0.975, 2: 0.841886, 5: 0.521824, 6: 0.459258, 30: 0.115703}[n] == pytest.approx(u, abs=1e-6)


def test_equal_differences_widen_within_the_metric_bounds():
    # two items each 0.5 lower, scores in [0, 1]: u = 1 - 0.158114 = 0.841886; differences lie in [-1, 1]:
    # 0.158114 * (-0.5) + 0.841886 * [-1, 1] = [-0.920943, 0.762829]
    diff = paired_bootstrap([0.9, 0.6], [0.4, 0.1])
    assert diff.delta == pytest.approx(-0.5) and diff.p_value == exact(0.5)
    assert (diff.low, diff.high) == pytest.approx((-0.920943, 0.762829), abs=1e-6)
    # BERTScore bounds (-1, 1): differences lie in [-2, 2]: 0.158114 * (-0.5) + 0.841886 * [-2, 2]
    wide = paired_bootstrap([0.9, 0.6], [0.4, 0.1], bounds=(-1.0, 1.0))
    assert (wide.low, wide.high) == pytest.approx((-1.762829, 1.604715), abs=1e-6)


def test_float_noise_of_a_subtraction_is_no_difference():
    # (v - 0.01) - v is -0.01 only up to rounding; the differences still count as equal
    values = np.random.default_rng(3).uniform(0.3, 0.5, size=8)
    diff = paired_bootstrap(values, values - 0.01)
    assert diff.p_value == exact(2.0**-7) and diff.high - diff.low > 0.1
    assert sign_flip_p([1e-14, -1e-14, 0.0]) == 1.0


@pytest.mark.parametrize(("diffs", "p"), [
    # sizes 1, 2, 3: |s1 + 2 s2 + 3 s3| >= 6 only for all + or all -: 2 / 8
    ([1.0, 2.0, 3.0], 0.25),
    # five of size 1, one negative (sum 3): sums 5 - 2k for k negatives; |5 - 2k| >= 3 for k in {0, 1, 4, 5}:
    # (1 + 5 + 5 + 1) / 32
    ([1.0, 1.0, 1.0, 1.0, -1.0], 12 / 32),
    # sizes {0.05, 0.1, 0.15, 0.2, 0.3, 0.4} (total 1.2); a set S of negatives gives 1.2 - 2 sum(S); observed
    # S = {0.05}: 1.1. |1.2 - 2 sum(S)| >= 1.1 iff sum(S) <= 0.05 ({}, {0.05}) or >= 1.15 (their complements): 4 / 64
    ([0.1, 0.2, -0.05, 0.3, 0.4, 0.15], 4 / 64),
    # a zero changes nothing: one non-zero difference left, p = 1
    ([0.0, -1.0], 1.0),
    # sizes 1, 1, 2 with signs +, -, + (sum 2): sums of s1 + s2 + 2 s3 are 4, 2, 2, 0, 0, -2, -2, -4: |.| >= 2 in 6 / 8
    ([1.0, -1.0, 2.0], 6 / 8),
    ([0.0, 0.0], 1.0),
])
def test_sign_flip_p_enumerated_by_hand(diffs, p):
    assert sign_flip_p(diffs) == exact(p)


def test_past_exact_enumeration_a_seeded_monte_carlo_counts_the_observed_assignment(monkeypatch):
    diffs = np.random.default_rng(5).normal(0.3, 1.0, size=14)
    exact_p = sign_flip_p(diffs)  # 2^14 assignments, enumerated
    monkeypatch.setattr(stats, "EXACT_STATES", 1)
    sampled = sign_flip_p(diffs, n_resamples=20_000, seed=1)
    assert sampled == sign_flip_p(diffs, n_resamples=20_000, seed=1)  # seeded
    assert sampled * 20_001 == pytest.approx(round(sampled * 20_001), abs=1e-6)  # (k + 1) / (R + 1)
    assert sampled == pytest.approx(exact_p, abs=4 * np.sqrt(exact_p * (1 - exact_p) / 20_000))
    # a drop seen on every one of 30 varied items: the least a Monte Carlo p can be is 1 / (R + 1)
    assert sign_flip_p(-np.linspace(0.1, 0.4, 30), n_resamples=999) == exact(1 / 1000)


def test_many_equal_differences_are_enumerated_exactly_and_never_zero():
    # 30 equal differences: 31 possible sums, exact whatever EXACT_STATES says about 2^30
    assert sign_flip_p([0.2] * 30) == exact(2.0**-29)
    assert 0 < sign_flip_p([0.2] * 3000) <= 2.0**-1000  # below a float's range: the smallest float, not 0


def test_sign_flip_agrees_with_scipy_permutation_test():
    from scipy.stats import permutation_test

    diffs = np.array([0.12, -0.03, 0.25, 0.07, 0.31, -0.11, 0.05, 0.18, 0.02])
    reference = permutation_test((diffs,), lambda x: np.mean(x), permutation_type="samples",
                                 alternative="two-sided", n_resamples=np.inf).pvalue
    assert sign_flip_p(diffs) == exact(reference)


def test_a_drop_on_enough_varied_items_is_significant():
    rng = np.random.default_rng(8)
    before = rng.uniform(0.3, 0.6, size=40)
    after = before - 0.08 + rng.normal(0, 0.05, size=40)
    diff = paired_bootstrap(before, after)
    assert diff.p_value < 0.001 and diff.high < 0 and diff.low < diff.delta < diff.high


differences = st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(differences)
def test_p_is_never_below_what_n_items_allow(diffs):
    p = sign_flip_p(diffs, n_resamples=200)
    nonzero = int(np.count_nonzero(np.round(diffs, 12)))
    assert 2.0 ** (1 - len(diffs)) <= 2.0 ** (1 - max(nonzero, 1)) <= p <= 1.0 or nonzero == 0 and p == 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=25))
def test_swapping_the_sides_mirrors_the_difference(pairs):
    before, after = [a for a, _ in pairs], [b for _, b in pairs]
    forward, back = paired_bootstrap(before, after, n_resamples=300), paired_bootstrap(after, before, n_resamples=300)
    assert back.p_value == forward.p_value
    assert back.delta == pytest.approx(-forward.delta, abs=1e-12)
    assert (back.low, back.high) == pytest.approx((-forward.high, -forward.low), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=25))
def test_the_interval_holds_the_mean_has_width_and_stays_in_range(pairs):
    before, after = [a for a, _ in pairs], [b for _, b in pairs]
    diff = paired_bootstrap(before, after, n_resamples=300)
    assert -1.0 <= diff.low <= diff.delta <= diff.high <= 1.0
    assert diff.high > diff.low  # never a point: identical sides are the caller's case (Comparison.identical)


def test_unseen_share_is_the_clopper_pearson_bound_for_no_events():
    from scipy.stats import binomtest

    for n in (1, 2, 5, 6, 50):
        upper = binomtest(0, n).proportion_ci(confidence_level=0.95, method="exact").high
        assert unseen_share(n) == pytest.approx(upper, rel=1e-9, abs=0)


# --- what the mutation run (scripts/mutation) showed the tests above did not pin down ---------


def test_exact_weights_give_two_to_the_one_minus_n_to_the_last_bit():
    assert sign_flip_p([0.3] * 6) == 0.03125 and sign_flip_p([0.3] * 11) == 2.0**-10  # ==, not approx


def test_twenty_distinct_differences_are_still_enumerated():
    # 20 distinct sizes: 2^20 sums, exactly EXACT_STATES: all positive gives 2 / 2^20, not a Monte Carlo 1/10,001
    assert sign_flip_p(np.arange(1, 21) / 100) == 2.0**-19


def test_near_ties_are_told_apart_beyond_float_noise():
    # sizes 0.004, 0.0030000005, 0.003 with signs +, +, - (observed 0.0040000005); of the 8 assignments
    # +++, ---, ++- (observed), --+ reach it; +-+ and -+- fall short by 1e-9, far more than rounding: 4 / 8
    assert sign_flip_p([0.004, 0.0030000005, -0.003]) == 0.5


def test_the_monte_carlo_draws_are_the_documented_ones(monkeypatch):
    monkeypatch.setattr(stats, "EXACT_STATES", 1)
    diffs = np.random.default_rng(2).normal(0.1, 1.0, size=30)
    d = np.round(diffs, 12)
    rng = np.random.default_rng(4)
    hits = 0
    for size in (1000, 500):  # chunks of 1000 sign assignments, the last one short
        signs = rng.integers(0, 2, size=(size, 30)) * 2.0 - 1.0
        hits += int(np.count_nonzero(np.abs(signs @ d) >= abs(d.sum()) - 1e-9 * np.abs(d).sum()))
    assert sign_flip_p(diffs, n_resamples=1500, seed=4) == (hits + 1) / 1501
    assert paired_bootstrap(np.zeros(30), diffs, n_resamples=1500, seed=4).p_value == (hits + 1) / 1501
    assert paired_bootstrap(np.zeros(30), diffs, n_resamples=1500).p_value == sign_flip_p(diffs, n_resamples=1500)
    assert sign_flip_p(diffs, n_resamples=1500) == sign_flip_p(diffs, n_resamples=1500, seed=0)
    assert sign_flip_p(diffs, n_resamples=1500, seed=1) != sign_flip_p(diffs, n_resamples=1500, seed=0)
    # thousands of items: the chunk shrinks (an integer number of rows), the p-value keeps its form
    many = np.random.default_rng(3).normal(0.0, 1.0, size=5000)
    assert sign_flip_p(many, n_resamples=50) * 51 == pytest.approx(round(sign_flip_p(many, n_resamples=50) * 51))


def test_the_floor_holds_under_monte_carlo(monkeypatch):
    # two equal differences sampled (seed 0): 477 of 1000 assignments reach the observed sum, (477 + 1) / 1001
    # = 0.4775 < 0.5, the exact value; the floor 2^(1-2) restores it
    monkeypatch.setattr(stats, "EXACT_STATES", 1)
    assert sign_flip_p([0.3, 0.3], n_resamples=1000, seed=0) == 0.5


def test_bootstrap_intervals_are_the_documented_percentiles():
    values = np.random.default_rng(6).uniform(0, 1, size=25)
    rng = np.random.default_rng(0)
    means = np.concatenate([values[rng.integers(0, 25, size=(1000, 25))].mean(axis=1) for _ in range(2)])
    assert stats.bootstrap_ci(values, n_resamples=2000) == tuple(np.percentile(means, [2.5, 97.5]))
    assert stats.bootstrap_ci(values, n_resamples=2000) == stats.bootstrap_ci(values, n_resamples=2000, seed=0)
    assert stats.bootstrap_ci(values, n_resamples=2000, seed=1) != stats.bootstrap_ci(values, n_resamples=2000)
    assert stats.bootstrap_ci(values, n_resamples=2000, confidence=0.9) == tuple(np.percentile(means, [5, 95]))
    diff = paired_bootstrap(np.zeros(25), values, n_resamples=2000)
    assert (diff.low, diff.high) == tuple(np.percentile(means, [2.5, 97.5]))
    assert paired_bootstrap(np.zeros(25), values, n_resamples=2000, seed=1).low != diff.low
    narrow = paired_bootstrap(np.zeros(25), values, n_resamples=2000, confidence=0.5)
    assert (narrow.low, narrow.high) == tuple(np.percentile(means, [25, 75]))
    # all alike: the confidence reaches the widening too (Clopper-Pearson at 90%: 0.05 ** (1/5))
    assert stats.bootstrap_ci([1.0] * 5, confidence=0.9)[0] == pytest.approx(0.05 ** 0.2, rel=1e-12)


def test_errors_say_what_is_missing():
    with pytest.raises(ValueError, match="^no items$"):
        unseen_share(0)
    with pytest.raises(ValueError, match="^no items to bootstrap$"):
        stats.bootstrap_ci([])
    with pytest.raises(ValueError, match="^no paired items$"):
        paired_bootstrap([], [])
    with pytest.raises(ValueError, match="^no paired items$"):
        stats.paired_proportions([], [])
    with pytest.raises(ValueError, match="^no trials$"):
        stats.wilson_interval(0, 0)


@pytest.mark.parametrize("confidence", [0.95, 0.9])
@pytest.mark.parametrize(("both", "gained", "lost", "neither"), [
    (59, 6, 16, 80), (3, 4, 1, 2), (10, 0, 5, 0), (0, 2, 2, 9),
    (1, 4, 0, 3),  # ad - bc = 3 lies between n/3 and n/2 = 4: no correction, phi 0
    (4, 0, 0, 1),  # ad - bc = 4 above n/2 = 2.5: corrected to 1.5
    (0, 1, 1, 0),  # every margin 1: phi = -1
])
def test_paired_proportions_follow_newcombes_method_10_from_the_four_counts(both, gained, lost, neither, confidence):
    """Newcombe (1998), method 10, written from the 2x2 counts (a both, b after only, c before only,
    d neither): delta = (b - c)/n; phi = (ad - bc corrected) / sqrt of the four margins."""
    a, b, c, d = both, gained, lost, neither
    n = a + b + c + d
    before = [1] * a + [0] * b + [1] * c + [0] * d
    after = [1] * a + [1] * b + [0] * c + [0] * d
    l1, u1 = stats.wilson_interval(a + b, n, confidence)
    l2, u2 = stats.wilson_interval(a + c, n, confidence)
    p1, p2 = (a + b) / n, (a + c) / n
    ad_bc = a * d - b * c
    corrected = ad_bc - n / 2 if ad_bc > n / 2 else min(ad_bc, 0)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = corrected / np.sqrt(margins) if margins else 0.0
    low = p1 - p2 - np.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = p1 - p2 + np.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    diff = stats.paired_proportions(before, after, confidence=confidence)
    assert (diff.delta, diff.low, diff.high) == pytest.approx(((b - c) / n, max(-1, low), min(1, high)), rel=1e-12, abs=1e-15)
    if (a, b, c, d) == (3, 4, 1, 2):  # ad - bc = 2 is positive but not above n/2 = 5: phi is 0 (no correction of 2)
        assert corrected == 0


def test_items_to_decide_at_the_edges():
    from medgate.metrics.stats import items_to_decide

    # confidence 0.9: z = 1.644854; (1.644854 * 0.2 / 0.02) ** 2 = 270.55 -> 271
    assert items_to_decide(-0.01, 0.2, 0.03, confidence=0.9) == 271


def test_holm_of_one_and_of_ties():
    from medgate.metrics.stats import holm

    assert holm([0.0]) == [0.0] and holm([0.0, 0.0]) == [0.0, 0.0]  # adjusted p of 0 stays 0
