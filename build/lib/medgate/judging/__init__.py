"""Judging: verdicts on thresholds, item-by-item comparisons with a baseline, and the baseline
files themselves. Pure functions over task results, except where baselines are read or written."""
