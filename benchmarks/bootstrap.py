"""How fast is the seeded, vectorised bootstrap? Prints figures; run: python benchmarks/bootstrap.py"""

import time

import numpy as np

from medgate.metrics.stats import bootstrap_ci, paired_bootstrap


def timed(fn, *args, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    binary = (rng.uniform(size=1000) < 0.6).astype(float)
    continuous = rng.uniform(size=1000)
    t_ci = timed(bootstrap_ci, binary)
    t_pair = timed(paired_bootstrap, continuous, continuous + rng.normal(0, 0.05, 1000))
    loop_start = time.perf_counter()
    for _ in range(200):  # a naive Python loop, for scale (200 of the 10,000 resamples)
        float(np.mean(rng.choice(binary, size=1000)))
    loop = (time.perf_counter() - loop_start) * 10_000 / 200
    print(f"bootstrap_ci, 10,000 resamples of 1,000 items: {t_ci:.3f} s (best of 5)")
    print(f"paired_bootstrap, 10,000 resamples of 1,000 pairs: {t_pair:.3f} s (best of 5)")
    print(f"naive per-resample loop, extrapolated to 10,000: {loop:.3f} s; ratio loop / vectorised: {loop / t_ci:.1f}")
