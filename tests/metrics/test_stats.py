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


def test_bootstrap_ci_of_constant_values_is_a_point():
    assert bootstrap_ci([0.4, 0.4, 0.4]) == (0.4, 0.4)
    with pytest.raises(ValueError):
        bootstrap_ci([])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=40))
def test_bootstrap_ci_bounds(values):
    low, high = bootstrap_ci(values, n_resamples=500)
    assert min(values) - 1e-12 <= low <= high <= max(values) + 1e-12


def test_mcnemar_matches_scipy_binomial_on_discordant_pairs():
    # 10 discordant pairs: 8 right-before-wrong-now, 2 the other way
    baseline = [1] * 8 + [0] * 2 + [1] * 20
    current = [0] * 8 + [1] * 2 + [1] * 20
    assert mcnemar_exact(baseline, current) == pytest.approx(binomtest(2, 10, 0.5).pvalue)
    # hand-computed: 2 * P(X <= 2 | n=10, p=.5) = 2 * (1 + 10 + 45) / 1024
    assert mcnemar_exact(baseline, current) == pytest.approx(2 * 56 / 1024)
    assert mcnemar_exact([1, 0, 1], [1, 0, 1]) == 1.0


def test_paired_bootstrap_detects_a_planted_drop_and_passes_noise():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.4, 0.6, size=200)
    dropped = paired_bootstrap(base, base - 0.05)
    assert dropped.delta == pytest.approx(-0.05) and dropped.p_value < 0.001
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
