"""Plain data shared by every layer: chats, decoding settings, completions, items, task results,
metric specs and the scoring context. No behaviour beyond small helpers; no medgate imports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

Message = Mapping[str, str]
Chat = Sequence[Message]


@dataclass(frozen=True)
class Sample:
    """One dataset item. ``fields`` holds what the task's prompt builder reads; ``meta`` holds
    per-item facts for the report (e.g. LongHealth's packing counts: numbers and flags)."""

    id: str
    fields: Mapping[str, Any]
    reference: Any
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenParams:
    """Decoding settings; greedy by default because a regression gate must be repeatable."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def describe(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p, "seed": self.seed}


@dataclass(frozen=True)
class Completion:
    """One engine answer. ``error`` is set (and ``text`` empty) when this item could not run."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    error: str | None = None


@dataclass(frozen=True)
class MetricSpec:
    """A metric's range and direction; thresholds are floors when higher is better, else ceilings."""

    name: str
    bounds: tuple[float, float] = (0.0, 1.0)
    higher_is_better: bool = True
    binary: bool = False  # per-item 0/1 (accuracies): compared by exact McNemar, else sign-flip test
    margin: float | None = None  # non-inferiority margin; None: the default of its kind (default_margin)

    def default_margin(self) -> float:
        """The drop that still counts as "not worse" unless models.toml says otherwise: 3 points
        for 0/1 metrics (accuracies, rates), 2 points for overlap scores (ROUGE, UMLS and ICD
        P/R/F1); a metric may declare its own (BERTScore: 1 point, its spread is narrow)."""
        if self.margin is not None:
            return self.margin
        return 0.03 if self.binary else 0.02


class ScoreStore(Protocol):
    """Where model-based scores (BERTScore) are kept per (answer, reference) pair; the pipeline
    passes its SQLite cache, so a metric never opens a database itself."""

    def get_scores(self, keys: Sequence[str]) -> dict[str, dict[str, float]]: ...

    def put_scores(self, entries: Sequence[tuple[str, dict[str, float]]]) -> None: ...


@dataclass(frozen=True)
class ScoringConfig:
    """Run-wide scoring choices (the BERTScore encoder) and the score store (None: none).
    ``model_metrics=False`` leaves out the metrics that load a model (BERTScore, UMLS): they are
    reported as not computed (the trivial baselines score so, to cost no encoder pass)."""

    bertscore_encoder: str = "minilm"
    bertscore_layers: int | None = None
    store: ScoreStore | None = None
    model_metrics: bool = True


@dataclass
class BatchScores:
    """Per-item scores of a whole task, metrics that could not be computed (with the reason),
    and notes for the report (e.g. the encoder used)."""

    per_item: list[dict[str, float]]
    not_computed: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PromptContext:
    """What prompt building may know of the model: its tokenizer and context length."""

    count_tokens: Callable[[str], int]
    truncate: Callable[[str, int], str]  # keep the first n tokens of a text
    context_len: int


@dataclass(frozen=True)
class ItemRecord:
    """What happened to one scored item: kept for per-item statistics and baselines."""

    id: str
    scores: Mapping[str, float]
    prompt_tokens: int
    completion_tokens: int
    output: str
    error: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


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

