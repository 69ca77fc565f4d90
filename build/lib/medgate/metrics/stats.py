"""Statistics for verdicts: bootstrap intervals, exact McNemar, paired bootstrap, the score
interval for paired proportions, the sample size that would decide, Holm.

Every random draw takes a seed, so a verdict never flips between two runs of the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

N_RESAMPLES = 10_000
_CHUNK = 1_000  # resamples per vectorised block: bounds memory at CHUNK x n indices


def _bootstrap_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(values)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, _CHUNK):
        stop = min(start + _CHUNK, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


def bootstrap_ci(values: Sequence[float], *, n_resamples: int = N_RESAMPLES, seed: int = 0,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over items."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("no items to bootstrap")
    if array.size == 1 or np.all(array == array[0]):
        return float(array[0]), float(array[0])
    means = _bootstrap_means(array, n_resamples, seed)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


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


def paired_bootstrap(baseline: Sequence[float], current: Sequence[float], *, n_resamples: int = N_RESAMPLES,
                     seed: int = 0, confidence: float = 0.95) -> PairedDiff:
    """Mean paired difference, its bootstrap interval and a two-sided bootstrap p-value
    (twice the smaller share of resampled means on either side of zero)."""
    diffs = np.asarray(current, dtype=float) - np.asarray(baseline, dtype=float)
    if diffs.size == 0:
        raise ValueError("no paired items")
    delta = float(diffs.mean())
    if np.all(diffs == diffs[0]):
        return PairedDiff(delta, delta, delta, 1.0 if delta == 0 else 0.0)
    means = _bootstrap_means(diffs, n_resamples, seed)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    p = 2 * min(float(np.mean(means <= 0)), float(np.mean(means >= 0)))
    return PairedDiff(delta, float(low), float(high), min(1.0, max(p, 1 / n_resamples)))


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
