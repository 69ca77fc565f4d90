"""Data-parallel planning, the pure part: workers per model and balanced, deterministic shards."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medgate.pipeline.shards import assign_shards, divide_workers, imbalance, split_balanced, token_estimator


def test_workers_go_to_models_in_proportion_to_their_work():
    assert divide_workers({"big": 300.0, "small": 100.0}, 4) == {"big": 3, "small": 1}
    assert divide_workers({"a": 1.0, "b": 1.0, "c": 1.0}, 3) == {"a": 1, "b": 1, "c": 1}  # one each when equal
    assert divide_workers({"a": 1.0, "b": 1.0}, 3) == {"a": 2, "b": 1}  # a tie goes to the model listed first
    assert divide_workers({"idle": 0.0, "busy": 10.0}, 5) == {"idle": 1, "busy": 4}
    with pytest.raises(ValueError, match="3 workers cannot give each of 4 models one"):
        divide_workers({m: 1.0 for m in "abcd"}, 3)


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=4), st.integers(0, 5))
def test_the_division_minimises_the_slowest_models_work_per_worker(work, spare):
    models = {f"m{i}": float(w) for i, w in enumerate(work)}
    n = len(models) + spare
    counts = divide_workers(models, n)
    assert sum(counts.values()) == n and min(counts.values()) >= 1
    best = min(max(models[m] / c for m, c in zip(models, combo))
               for combo in itertools.product(range(1, n + 1), repeat=len(models)) if sum(combo) == n)
    assert max(models[m] / counts[m] for m in models) == pytest.approx(best)


def test_shards_balance_tokens_not_prompt_counts():
    # one LongHealth-sized prompt and eight MedNLI-sized ones: by count, 5 and 4; by tokens, it stands alone
    weights = [8000] + [200] * 8
    assert split_balanced(weights, 2) == [[0], [1, 2, 3, 4, 5, 6, 7, 8]]
    assert imbalance([8000, 1600]) > imbalance([sum(weights) / 2] * 2) == 1.0


@given(st.lists(st.integers(1, 10_000), max_size=60), st.integers(1, 6))
def test_split_is_a_deterministic_partition_within_one_prompt_of_the_mean(weights, k):
    bins = split_balanced(weights, k)
    assert bins == split_balanced(list(weights), k)  # the same on every worker
    assert sorted(p for b in bins for p in b) == list(range(len(weights)))
    assert all(b == sorted(b) for b in bins)
    loads = [sum(weights[p] for p in b) for b in bins]
    # greedy longest-first: the fullest bin exceeds the mean by less than one prompt
    assert max(loads) <= sum(weights) / k + max(weights, default=0)


def test_assign_shards_gives_each_model_consecutive_workers_and_covers_every_request():
    shards = assign_shards({"a": [5, 5, 5, 5, 5, 5], "b": [1, 1]}, ["gw0", "gw1", "gw2", "gw3"])
    assert [(s.worker, s.index, s.count) for s in shards["a"]] == [("gw0", 0, 3), ("gw1", 1, 3), ("gw2", 2, 3)]
    assert [(s.worker, s.label) for s in shards["b"]] == [("gw3", "shard 1/1")]
    assert sorted(p for s in shards["a"] for p in s.requests) == list(range(6))
    assert [s.tokens for s in shards["a"]] == [10, 10, 10]


def test_token_estimate_follows_characters_at_the_tokenizers_rate():
    chats = [[{"role": "user", "content": "word " * n}] for n in (10, 100, 1000)]
    estimate = token_estimator(chats, lambda text: len(text.split()))  # 5 characters a token
    assert [estimate(c) for c in chats] == [10, 100, 1000]
