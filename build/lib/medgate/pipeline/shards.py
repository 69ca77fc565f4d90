"""Data-parallel generation, the pure part: how many workers each model gets, and which of a
model's prompts each of them generates. Every worker computes the same answer from the same
inputs (the collected tests and the planned prompts), so no one has to hand out work.

Work is counted in estimated tokens (prompt plus max new tokens): LongHealth's 8k-token prompts
cost a hundred MedNLI prompts, so counting prompts would leave one worker with most of the work.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from medgate.core.types import Chat


@dataclass(frozen=True)
class Shard:
    """One worker's part of one model's prompts."""

    model: str
    index: int  # 0-based; messages say "shard index+1/count"
    count: int
    worker: str  # the xdist worker id that generates it ("gw2")
    requests: tuple[int, ...]  # positions in the model's request list, ascending
    tokens: int  # estimated tokens of those requests

    @property
    def label(self) -> str:
        return f"shard {self.index + 1}/{self.count}"


def divide_workers(work: Mapping[str, float], n_workers: int) -> dict[str, int]:
    """Workers per model, at least one each, the rest where they cut the longest finish time.

    Each spare worker goes to the model whose work per worker is largest now (ties: the model
    listed first), which is the division that minimises the slowest model's work per worker.
    """
    if n_workers < len(work):
        raise ValueError(f"{n_workers} workers cannot give each of {len(work)} models one")
    counts = {model: 1 for model in work}
    order = {model: i for i, model in enumerate(work)}
    heap = [(-work[m], order[m], m) for m in work]
    heapq.heapify(heap)
    for _ in range(n_workers - len(work)):
        _, _, model = heapq.heappop(heap)
        counts[model] += 1
        heapq.heappush(heap, (-work[model] / counts[model], order[model], model))
    return counts


def split_balanced(weights: Sequence[int], k: int) -> list[list[int]]:
    """Positions of ``weights`` in ``k`` bins of near-equal sum: longest first, each to the
    lightest bin (ties: the lower bin, then the earlier position), so the split is deterministic.
    Each bin lists its positions in ascending order."""
    if k < 1:
        raise ValueError(f"need at least one bin, got {k}")
    bins: list[list[int]] = [[] for _ in range(k)]
    loads = [(0, b) for b in range(k)]  # a heap of (load, bin)
    for position in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        load, b = heapq.heappop(loads)
        bins[b].append(position)
        heapq.heappush(loads, (load + weights[position], b))
    return [sorted(b) for b in bins]


def imbalance(loads: Sequence[float]) -> float:
    """The largest load over the mean (1.0 is a perfect split)."""
    mean = sum(loads) / len(loads) if loads else 0.0
    return max(loads) / mean if mean else 1.0


def assign_shards(weights: Mapping[str, Sequence[int]], workers: Sequence[str]) -> dict[str, list[Shard]]:
    """Every model's shards: workers divided among models by their estimated tokens (models in
    the given order take consecutive workers), then each model's requests split among its own."""
    per_model = divide_workers({m: float(sum(w)) for m, w in weights.items()}, len(workers))
    out: dict[str, list[Shard]] = {}
    start = 0
    for model, model_weights in weights.items():
        mine = workers[start : start + per_model[model]]
        start += per_model[model]
        bins = split_balanced(model_weights, len(mine))
        out[model] = [Shard(model=model, index=i, count=len(mine), worker=w, requests=tuple(b),
                            tokens=sum(model_weights[p] for p in b)) for i, (w, b) in enumerate(zip(mine, bins))]
    return out


def token_estimator(chats: Sequence[Chat], count_tokens: Callable[[str], int], sample: int = 64) -> Callable[[Chat], int]:
    """Estimated prompt tokens of a chat: its characters times the tokens per character that the
    model's tokenizer gives on up to ``sample`` evenly spaced prompts. Tokenizing 6,000 LongHealth
    prompts of 8k tokens on every worker would cost more than it balances."""
    step = max(1, len(chats) // sample)
    picked = [_text(chat) for chat in chats[::step][:sample]]
    chars = sum(len(t) for t in picked)
    ratio = sum(count_tokens(t) for t in picked) / chars if chars else 0.25
    return lambda chat: max(1, round(len(_text(chat)) * ratio))


def _text(chat: Chat) -> str:
    return "\n".join(m["content"] for m in chat)
