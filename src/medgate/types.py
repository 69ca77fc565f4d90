"""Plain data shared by tasks, engines, gating and reporting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

Message = Mapping[str, str]
Chat = Sequence[Message]


@dataclass(frozen=True)
class Sample:
    """One dataset item. ``fields`` holds what the task's prompt builder reads."""

    id: str
    fields: Mapping[str, Any]
    reference: Any


@dataclass(frozen=True)
class GenParams:
    """Decoding settings; greedy by default because a regression gate must be repeatable."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Completion:
    """One engine answer. ``error`` is set (and ``text`` empty) when this item could not run."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    error: str | None = None


@dataclass(frozen=True)
class ItemRecord:
    """What happened to one scored item: kept for per-item statistics and baselines."""

    id: str
    scores: Mapping[str, float]
    prompt_tokens: int
    completion_tokens: int
    output: str
    error: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)  # e.g. LongHealth's packing counts


@dataclass
class TaskResult:
    """A task's outcome for one model: metric values, per-item records and provenance."""

    task: str
    model: str
    metrics: dict[str, float | None]
    items: list[ItemRecord]
    not_computed: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)  # 95% bootstrap, per metric

    @property
    def errors(self) -> list[ItemRecord]:
        return [item for item in self.items if item.error]
