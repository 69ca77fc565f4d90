"""Statistics for verdicts: bootstrap intervals, exact McNemar, paired bootstrap, Holm.

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
