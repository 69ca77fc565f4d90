"""Trivial baselines: what answers that ignore the item, or only repeat it, score on a run's items
through the task's own scorer. A floor at or below them passes a model whose prompt, parser or
engine is broken, so each task reports them beside the model's value.

- ``majority``: one constant answer for every item, chosen from the scored items' gold (the most
  frequent label, letter or code; tasks may add more constants, e.g. LongHealth's best letter A-E);
- ``empty``: the empty answer;
- ``echo``: the item's own input as its answer (the question, the note, the sentences).

Scoring is pure by default: ROUGE, accuracy, code sets; BERTScore and UMLS need a model and are
left out (``ScoringConfig(model_metrics=False)``) unless the caller asks for them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Hashable, Sequence

from medgate.core.types import Chat, Sample, ScoringConfig
from medgate.tasks.base import TaskSpec

CHEAP = ScoringConfig(model_metrics=False)


def most_frequent(values: Sequence[Hashable]) -> Any:
    """The most frequent value; a tie goes to the one met first (deterministic for a given order)."""
    if not values:
        raise ValueError("most_frequent of no values")
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)


def repeated_reference(samples: Sequence[Sample]) -> dict[str, str]:
    """Free-text tasks: the most frequent reference, when one occurs at least twice (references
    that are all different give no majority: any one of them would be an arbitrary constant)."""
    references = [str(s.reference) for s in samples]
    if not references:
        return {}
    best = most_frequent(references)
    return {"majority": best} if references.count(best) >= 2 else {}


def last_user_message(chat: Chat) -> str:
    return next((m["content"] for m in reversed(chat) if m["role"] == "user"), "")


def trivial_answers(task: TaskSpec, items: Sequence[Sample], chats: Sequence[Chat]) -> dict[str, list[str]]:
    """Baseline name -> one answer per item: the task's constants, the empty answer, the echo."""
    if len(items) != len(chats):
        raise ValueError(f"{task.name}: {len(items)} items but {len(chats)} prompts")
    constants = task.constants(items) if task.constants is not None and items else repeated_reference(items)
    answers = {name: [text] * len(items) for name, text in constants.items()}
    answers["empty"] = [""] * len(items)
    echo = task.echo
    answers["echo"] = [echo(s) if echo is not None else last_user_message(c) for s, c in zip(items, chats)]
    return answers


def trivial_baselines(task: TaskSpec, items: Sequence[Sample], chats: Sequence[Chat],
                      scoring: ScoringConfig = CHEAP) -> dict[str, dict[str, float]]:
    """Baseline name -> metric -> mean score over the items, through ``task.score_all``. Metrics
    the scoring leaves out (BERTScore, UMLS by default) are absent."""
    out: dict[str, dict[str, float]] = {}
    for name, answers in trivial_answers(task, items, chats).items():
        means = task.aggregate(task.score_all(answers, items, scoring).per_item)
        out[name] = {metric: value for metric, value in means.items() if value is not None}
    return out


def best_baseline(baselines: dict[str, dict[str, float]], metric: str, higher_is_better: bool = True
                  ) -> tuple[str, float] | None:
    """The trivial baseline that scores best on ``metric`` (name, value); None if none scored it."""
    scored = [(name, values[metric]) for name, values in baselines.items() if metric in values]
    if not scored:
        return None
    return max(scored, key=lambda nv: nv[1]) if higher_is_better else min(scored, key=lambda nv: nv[1])
