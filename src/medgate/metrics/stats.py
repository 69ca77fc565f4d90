"""Statistics for verdicts: bootstrap intervals, exact McNemar, the paired sign-flip test and
paired bootstrap interval, the score interval for paired proportions, the sample size that would
decide, Holm.

Every random draw takes a seed, so a verdict never flips between two runs of the same data. No
result claims more than its items allow: a p-value is never below what n paired items can give
(2^(1-n) for a sign test on n differences), and an interval never has zero width, since n items
that all agree cannot exclude that a small share of unseen items differs (``unseen_share``).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Sequence

import numpy as np

N_RESAMPLES = 10_000
_CHUNK = 1_000  # resamples per vectorised block: bounds memory at CHUNK x n indices
EXACT_STATES = 1 << 20  # sign-flip sums enumerated exactly up to this many (every n <= 20, any n when tied)
_DECIMALS = 12  # differences are compared after rounding: float noise of a subtraction is no difference
_TIE = 1e-9  # relative: sign-flip sums this close to the observed one count as equally extreme


def _bootstrap_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(values)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, _CHUNK):
        stop = min(start + _CHUNK, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


def unseen_share(n: int, confidence: float = 0.95) -> float:
    """The largest share of the population that n items, all alike, cannot exclude behaves
    otherwise: the one-sided Clopper-Pearson upper bound for 0 events in n, 1 - (alpha/2)^(1/n)
    (the "rule of three" at 97.5%: about 3.69 / n). n = 1: 0.975; n = 10: 0.308; n = 100: 0.036."""
    if n < 1:
        raise ValueError("no items")
    return 1.0 - ((1.0 - confidence) / 2.0) ** (1.0 / n)


def _widened(value: float, lo: float, hi: float, n: int, confidence: float) -> tuple[float, float]:
    """The interval of a mean when all n items showed ``value``: up to ``unseen_share`` of the
    population may sit anywhere in [lo, hi], so the mean lies in (1-u) value + u [lo, hi]."""
    if not lo < hi:
        raise ValueError(f"metric bounds ({lo}, {hi}) are not an interval")
    u = unseen_share(n, confidence)
    low, high = (1 - u) * value + u * lo, (1 - u) * value + u * hi
    return float(min(low, value)), float(max(high, value))  # a value outside the bounds is still held


def _all_alike(values: np.ndarray) -> bool:
    rounded = np.round(values, _DECIMALS)
    return bool(np.all(rounded == rounded[0]))


def bootstrap_ci(values: Sequence[float], *, n_resamples: int = N_RESAMPLES, seed: int = 0,
                 confidence: float = 0.95, bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over items. When every item has the same value
    (one item, or a constant score) the bootstrap has no spread; the interval is then widened by
    what n items cannot exclude (``unseen_share``) towards the metric's ``bounds``. For a 0/1
    metric this is exactly the Clopper-Pearson interval of 0 or n successes in n: one correct
    item gives [0.025, 1], 20 of 20 give [0.832, 1]."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("no items to bootstrap")
    if _all_alike(array):
        return _widened(float(array.mean()), bounds[0], bounds[1], array.size, confidence)
    means = _bootstrap_means(array, n_resamples, seed)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    mean = float(array.mean())
    return float(min(low, mean)), float(max(high, mean))


def mcnemar_exact(baseline: Sequence[float], current: Sequence[float]) -> float:
    """Two-sided exact McNemar p-value for paired binary outcomes (a binomial test on the
    discordant pairs)."""
    from scipy.stats import binomtest

    b = sum(1 for x, y in zip(baseline, current) if x >= 0.5 > y)  # right before, wrong now
    c = sum(1 for x, y in zip(baseline, current) if y >= 0.5 > x)  # wrong before, right now
    if b + c == 0:
        return 1.0
    return float(binomtest(min(b, c), b + c, 0.5).pvalue)


@dataclass(frozen=True)
class PairedDiff:
    delta: float  # mean(current - baseline)
    low: float  # interval of delta
    high: float
    p_value: float


def sign_flip_p(diffs: Sequence[float], *, n_resamples: int = N_RESAMPLES, seed: int = 0) -> float:
    """Two-sided p-value of "no difference" for paired differences by the sign-flip permutation
    test: under the null each difference is as likely to have the other sign, so the p-value is
    the share of the 2^m sign assignments of the m non-zero differences whose sum is at least as
    far from 0 as the observed one. Zeros do not count (their sign changes nothing).

    Exact whenever the sums can be enumerated: differences of equal size are grouped (a group of k
    contributes a binomial number of flips), so up to ``EXACT_STATES`` sums, which covers every
    m <= 20 and any m with few distinct sizes (all equal: m + 1 sums). Beyond that a seeded Monte
    Carlo of ``n_resamples`` assignments with the observed one counted in, (k + 1) / (R + 1).
    Either way p >= 2^(1-m), the exact p of m equal differences: one item gives 1.0, two 0.5,
    five 0.0625 (never significant at 0.05), six 0.03125."""
    from scipy.stats import binom

    d = np.round(np.asarray(diffs, dtype=float), _DECIMALS)
    d = d[d != 0]
    m = d.size
    if m == 0:
        return 1.0
    observed = abs(float(d.sum()))
    threshold = observed - _TIE * float(np.abs(d).sum())
    sizes, counts = np.unique(np.abs(d), return_counts=True)
    if _states(counts) <= EXACT_STATES:
        sums, probs = np.zeros(1), np.ones(1)
        for size, k in zip(sizes, counts):
            k = int(k)
            flips = np.arange(k + 1)  # how many of the group's k differences are positive
            # binomial weights: exact dyadic fractions while they fit a float (so 2^(1-m) is exact)
            weight = (np.array([comb(k, j) for j in range(k + 1)], dtype=float) / 2.0**k if k <= 1000
                      else binom.pmf(flips, k, 0.5))
            sums = (sums[:, None] + (size * (2 * flips - k))[None, :]).ravel()
            probs = (probs[:, None] * weight[None, :]).ravel()
        p = float(probs[np.abs(sums) >= threshold].sum())
    else:
        rng = np.random.default_rng(seed)
        hits = 0
        chunk = max(1, min(_CHUNK, 4_000_000 // m))
        for start in range(0, n_resamples, chunk):
            signs = rng.integers(0, 2, size=(min(chunk, n_resamples - start), m)) * 2.0 - 1.0
            hits += int(np.count_nonzero(np.abs(signs @ d) >= threshold))
        p = (hits + 1) / (n_resamples + 1)
    # 2^(1-m) is the least any m differences can give; below a float's range (m > 1022) the
    # smallest normal float stands for it, never 0
    return float(min(1.0, max(p, 2.0 ** (1 - m), np.finfo(float).tiny)))


def _states(counts: np.ndarray) -> int:
    """How many sign-flip sums groups of these sizes give (the product of k + 1), counted only
    until it passes EXACT_STATES."""
    states = 1
    for k in counts:
        states *= int(k) + 1
        if states > EXACT_STATES:
            break
    return states


def paired_bootstrap(baseline: Sequence[float], current: Sequence[float], *, n_resamples: int = N_RESAMPLES,
                     seed: int = 0, confidence: float = 0.95,
                     bounds: tuple[float, float] = (0.0, 1.0)) -> PairedDiff:
    """Mean paired difference (current - baseline), its percentile bootstrap interval and the
    two-sided p-value of the sign-flip test (``sign_flip_p``; the bootstrap gives no p-value: at
    small n or with ties its share of resampled means beyond 0 can be 0 on data that cannot show
    anything).

    ``bounds``: the range of a per-item score, so a difference lies in [lo - hi, hi - lo]. When
    every difference is the same (the bootstrap has no spread, e.g. two different models that
    both score 0 on every item), the interval is widened by what n items cannot exclude: up to
    ``unseen_share(n)`` of the items may differ by anything in that range. Two sides identical
    by construction (the same model) are not this function's case: the caller records 0 exactly."""
    diffs = np.asarray(current, dtype=float) - np.asarray(baseline, dtype=float)
    if diffs.size == 0:
        raise ValueError("no paired items")
    delta = float(diffs.mean())
    p = sign_flip_p(diffs, n_resamples=n_resamples, seed=seed)
    lo, hi = bounds
    if _all_alike(diffs):
        low, high = _widened(delta, lo - hi, hi - lo, diffs.size, confidence)
        return PairedDiff(delta, low, high, p)
    means = _bootstrap_means(diffs, n_resamples, seed)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return PairedDiff(delta, float(min(low, delta)), float(max(high, delta)), p)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a binomial proportion."""
    from scipy.stats import norm

    if n == 0:
        raise ValueError("no trials")
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def paired_proportions(before: Sequence[float], after: Sequence[float], *,
                       confidence: float = 0.95) -> PairedDiff:
    """The difference of two paired proportions (after - before) with Newcombe's square-and-add
    score interval (Newcombe 1998, method 10: Wilson intervals of both proportions, combined with
    the phi coefficient of the pairs, corrected towards 0 by n/2 when positive) and the exact
    McNemar p-value."""
    pairs = [(x >= 0.5, y >= 0.5) for x, y in zip(before, after)]
    n = len(pairs)
    if n == 0:
        raise ValueError("no paired items")
    both = sum(x and y for x, y in pairs)
    gained = sum(y and not x for x, y in pairs)  # wrong before, right after
    lost = sum(x and not y for x, y in pairs)  # right before, wrong after
    neither = n - both - gained - lost
    p1, p2 = (both + gained) / n, (both + lost) / n  # after, before
    l1, u1 = wilson_interval(both + gained, n, confidence)
    l2, u2 = wilson_interval(both + lost, n, confidence)
    margins = (both + gained) * (lost + neither) * (both + lost) * (gained + neither)
    cross = both * neither - gained * lost
    cross = cross - n / 2 if cross > n / 2 else min(cross, 0)  # Newcombe's correction of a positive phi
    phi = cross / np.sqrt(margins) if margins > 0 else 0.0
    delta = p1 - p2
    lower = np.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    upper = np.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return PairedDiff(float(delta), float(max(-1.0, delta - lower)), float(min(1.0, delta + upper)),
                      mcnemar_exact(before, after))


def items_to_decide(mean: float, sd: float, margin: float, *, confidence: float = 0.95) -> int | None:
    """How many paired items would settle "not worse than -margin" (or "worse") for paired
    differences of this mean and standard deviation (a normal approximation); None when no number
    would (the mean sits on the margin, or the differences do not vary)."""
    from scipy.stats import norm

    distance = abs(mean + margin)
    if sd <= 0 or distance < 1e-12:
        return None
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    return int(np.ceil((z * sd / distance) ** 2))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
