import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from medgate.metrics.stats import bootstrap_ci, holm, mcnemar_exact, paired_bootstrap


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    values = [1.0] * 30 + [0.0] * 70
    a, b = bootstrap_ci(values, seed=3), bootstrap_ci(values, seed=3)
    assert a == b
    low, high = a
    assert low < 0.3 < high
    # normal approximation: 0.3 +- 1.96 * sqrt(0.3 * 0.7 / 100) = [0.210, 0.390]
    assert low == pytest.approx(0.21, abs=0.02) and high == pytest.approx(0.39, abs=0.02)


def test_bootstrap_ci_of_constant_values_is_widened_towards_the_bounds():
    # 3 items of 0.4: u = 1 - 0.025 ** (1/3) = 1 - 0.292402 = 0.707598; the mean lies in
    # (1 - u) * 0.4 + u * [0, 1] = [0.116961, 0.824559]
    assert bootstrap_ci([0.4, 0.4, 0.4]) == pytest.approx((0.116961, 0.824559), abs=1e-6)
    # BERTScore-like bounds (-1, 1): 0.292402 * 0.4 + 0.707598 * [-1, 1] = [-0.590637, 0.824559]
    assert bootstrap_ci([0.4] * 3, bounds=(-1.0, 1.0)) == pytest.approx((-0.590637, 0.824559), abs=1e-6)
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="bounds"):
        bootstrap_ci([0.4], bounds=(1.0, 1.0))


@pytest.mark.parametrize(("n", "low"), [(1, 0.025), (2, 0.158114), (5, 0.478176), (20, 0.831566)])
def test_one_correct_item_is_not_an_interval_of_one_point(n, low):
    """n of n correct: the Clopper-Pearson interval [(alpha/2)^(1/n), 1] (0.025 ** (1/2) = 0.158114,
    0.025 ** (1/5) = 0.478176, 0.025 ** (1/20) = 0.831566); n of n wrong: its mirror [0, 1 - low]."""
    assert bootstrap_ci([1.0] * n) == pytest.approx((low, 1.0), rel=1e-5, abs=0)
    assert bootstrap_ci([0.0] * n) == pytest.approx((0.0, 1 - low), rel=1e-5, abs=1e-15)
    exact = binomtest(n, n).proportion_ci(confidence_level=0.95, method="exact")
    assert bootstrap_ci([1.0] * n) == pytest.approx((exact.low, exact.high), rel=1e-9, abs=0)


def test_unseen_share_hand_computed():
    from medgate.metrics.stats import unseen_share

    # 1 - 0.025 ** (1/n): n = 1 -> 0.975, n = 10 -> 1 - 0.691503 = 0.308497, n = 100 -> 0.036217
    assert unseen_share(1) == pytest.approx(0.975, rel=1e-12)
    assert unseen_share(10) == pytest.approx(0.308497, rel=1e-5)
    assert unseen_share(100) == pytest.approx(0.036217, rel=1e-4)
    assert unseen_share(10, confidence=0.9) == pytest.approx(1 - 0.05 ** 0.1, rel=1e-12)
    with pytest.raises(ValueError):
        unseen_share(0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=40))
def test_bootstrap_ci_bounds(values):
    low, high = bootstrap_ci(values, n_resamples=500)
    mean = float(np.mean(values))
    assert 0.0 <= low <= mean <= high <= 1.0 and high > low
    if len(set(np.round(values, 12))) > 1:  # a spread of its own: the bootstrap stays within the values
        assert min(values) - 1e-12 <= low and high <= max(values) + 1e-12


def test_mcnemar_matches_scipy_binomial_on_discordant_pairs():
    # 10 discordant pairs: 8 right-before-wrong-now, 2 the other way
    baseline = [1] * 8 + [0] * 2 + [1] * 20
    current = [0] * 8 + [1] * 2 + [1] * 20
    assert mcnemar_exact(baseline, current) == pytest.approx(binomtest(2, 10, 0.5).pvalue, rel=1e-9, abs=0)
    # hand-computed: 2 * P(X <= 2 | n=10, p=.5) = 2 * (1 + 10 + 45) / 1024
    assert mcnemar_exact(baseline, current) == pytest.approx(2 * 56 / 1024, rel=1e-9, abs=0)
    assert mcnemar_exact([1, 0, 1], [1, 0, 1]) == 1.0


@pytest.mark.parametrize(("before", "after", "p"), [
    ([1], [0], 1.0),  # one discordant pair: P(X <= 0 | 1) = 1/2, doubled
    ([0], [1], 1.0),
    ([1], [1], 1.0),  # no discordant pair
    ([1, 1], [0, 0], 0.5),  # two lost: 2 * (1/2)^2
    ([1, 0], [0, 1], 1.0),  # one lost, one gained: 2 * 3/4, capped
    ([1] * 6, [0] * 6, 0.03125),  # 2 * (1/2)^6
])
def test_mcnemar_exact_at_one_and_two_items(before, after, p):
    assert mcnemar_exact(before, after) == pytest.approx(p, rel=1e-12, abs=0)


@pytest.mark.parametrize(("before", "after"), [([1], [0]), ([1], [1]), ([0], [0]), ([1, 1], [0, 0]), ([1, 0], [1, 0])])
def test_paired_proportions_at_one_and_two_items_has_width(before, after):
    """Newcombe's interval is built from Wilson intervals, which never collapse: even one item, or
    two models that agree on every item, leave a wide interval and a p-value of at least 0.5."""
    from medgate.metrics.stats import paired_proportions

    diff = paired_proportions(before, after)
    assert -1 <= diff.low <= diff.delta <= diff.high <= 1
    assert diff.high - diff.low > 0.5 and diff.p_value >= 0.5
    if before == after == [1]:
        # Wilson 1 of 1: [0.206549, 1]; no discordance (phi 0): +- (1 - 0.206549) = +- 0.793451
        assert (diff.low, diff.high) == pytest.approx((-0.793451, 0.793451), abs=1e-6)


def test_paired_bootstrap_detects_a_planted_drop_and_passes_noise():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.4, 0.6, size=200)
    dropped = paired_bootstrap(base, base - 0.05 + rng.normal(0, 0.02, size=200))
    assert dropped.delta == pytest.approx(-0.05, abs=0.005) and dropped.p_value < 0.001
    assert dropped.low < dropped.delta < dropped.high < 0
    noisy = paired_bootstrap(base, base + rng.normal(0, 0.02, size=200))
    assert noisy.low < 0 < noisy.high and noisy.p_value > 0.05


def test_holm_hand_computed():
    # sorted p: .01 (x4 = .04), .02 (x3 = .06), .03 (x2 = .06), .04 (x1 = .04 -> kept monotone .06)
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


@given(st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_holm_properties(p_values):
    adjusted = holm(p_values)
    assert all(a >= p - 1e-12 and a <= 1 for a, p in zip(adjusted, p_values))
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    assert all(adjusted[order[i]] <= adjusted[order[i + 1]] + 1e-12 for i in range(len(order) - 1))


def test_wilson_interval_matches_scipy():
    from medgate.metrics.stats import wilson_interval

    for k, n in [(0, 10), (3, 10), (20, 33), (33, 33), (500, 1422)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_paired_proportions_match_the_published_newcombe_interval():
    from medgate.metrics.stats import paired_proportions

    # Cavo et al. (2012) table in Fagerland, Lydersen & Laake, "Statistical analysis of contingency tables",
    # chapter 8: 59 both, 6 first only, 16 second only, 80 neither: -0.0621 (95% CI -0.1186 to -0.0046)
    before = [1] * 59 + [0] * 6 + [1] * 16 + [0] * 80
    after = [1] * 59 + [1] * 6 + [0] * 16 + [0] * 80
    diff = paired_proportions(before, after)
    assert (round(diff.delta, 4), round(diff.low, 4), round(diff.high, 4)) == (-0.0621, -0.1186, -0.0046)
    assert diff.p_value == pytest.approx(binomtest(6, 22, 0.5).pvalue, rel=1e-9, abs=0)  # exact McNemar on 22 discordant pairs


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 30), st.integers(0, 15), st.integers(0, 15), st.integers(0, 30))
def test_paired_proportions_interval_holds_the_estimate_and_stays_in_range(both, gained, lost, neither):
    from medgate.metrics.stats import paired_proportions

    if both + gained + lost + neither == 0:
        return
    before = [1] * both + [0] * gained + [1] * lost + [0] * neither
    after = [1] * both + [1] * gained + [0] * lost + [0] * neither
    diff = paired_proportions(before, after)
    assert -1 <= diff.low <= diff.delta <= diff.high <= 1
    assert diff.delta == pytest.approx((gained - lost) / len(before))


def test_paired_proportions_interval_covers_about_95_percent():
    """Seeded simulation: 2,000 samples of 80 pairs with a true difference of -0.05."""
    from medgate.metrics.stats import paired_proportions

    rng = np.random.default_rng(11)
    probs = [0.45, 0.05, 0.10, 0.40]  # both, gained, lost, neither: true difference 0.05 - 0.10
    hits = 0
    for _ in range(2000):
        counts = rng.multinomial(80, probs)
        before = [1] * counts[0] + [0] * counts[1] + [1] * counts[2] + [0] * counts[3]
        after = [1] * counts[0] + [1] * counts[1] + [0] * counts[2] + [0] * counts[3]
        d = paired_proportions(before, after)
        hits += d.low <= -0.05 <= d.high
    assert 0.93 <= hits / 2000 <= 0.975


def test_items_to_decide_hand_computed():
    from medgate.metrics.stats import items_to_decide

    # mean -0.01, sd 0.2, margin 0.03: distance 0.02 -> (1.959964 * 0.2 / 0.02) ** 2 = 384.15 -> 385
    assert items_to_decide(-0.01, 0.2, 0.03) == 385
    # mean -0.05 (beyond the margin by 0.02): the same number shows "worse"
    assert items_to_decide(-0.05, 0.2, 0.03) == 385
    assert items_to_decide(-0.03, 0.2, 0.03) is None and items_to_decide(0.0, 0.0, 0.03) is None
