"""What every task is: a loader, a prompt builder and a scorer, plus its protocol constants."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from medgate.errors import DataError
from medgate.types import Chat, Sample

FEWSHOT_SEED = 1  # PROTOCOL.md: random.seed(1); random.shuffle(items)


@dataclass(frozen=True)
class MetricSpec:
    """A metric's range and direction; thresholds are floors when higher is better, else ceilings."""

    name: str
    description: str
    bounds: tuple[float, float] = (0.0, 1.0)
    higher_is_better: bool = True


@dataclass(frozen=True)
class TaskSpec:
    """One clinical task. Every callable is pure and testable without a model."""

    name: str
    title: str
    filename: str  # the user's real file, under its original name, in the data directory
    fewshot: int
    max_new_tokens: int
    metrics: Mapping[str, MetricSpec]
    load_samples: Callable[[Path], list[Sample]]
    build_prompt: Callable[[Sample, Sequence[Sample]], Chat]
    score_sample: Callable[[str, Sample], dict[str, float]]
    prompt_version: str

    @property
    def metric_names(self) -> list[str]:
        return list(self.metrics)

    def aggregate(self, per_item: Sequence[Mapping[str, float]]) -> dict[str, float | None]:
        """Mean of every metric over items (each item once: the reference counted item 0 twice)."""
        out: dict[str, float | None] = {}
        for metric in self.metrics:
            values = [scores[metric] for scores in per_item if metric in scores]
            out[metric] = sum(values) / len(values) if values else None
        return out


def split_fewshot(samples: Sequence[Sample], k: int, seed: int = FEWSHOT_SEED) -> tuple[list[Sample], list[Sample]]:
    """Shuffle as the reference does and take the first k items as few-shot examples."""
    items = list(samples)
    random.Random(seed).shuffle(items)
    return items[:k], items[k:]


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a JSON-lines file with their 1-based line numbers; blank lines are skipped."""
    rows = []
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"not valid JSON ({exc.msg} at column {exc.colno})", item=f"line {number}") from None
            if not isinstance(row, dict):
                raise DataError(path, f"expected a JSON object, got {type(row).__name__}", item=f"line {number}")
            rows.append((number, row))
    return rows


def require_text(path: Path, row: Mapping[str, Any], field: str, item: object, *, allow_empty: bool = False) -> str:
    """A string field of a row, or a DataError naming file, item and field."""
    if field not in row:
        raise DataError(path, "missing field", item=item, field=field)
    value = row[field]
    if not isinstance(value, str):
        raise DataError(path, f"expected text, got {type(value).__name__}", item=item, field=field)
    if not allow_empty and not value.strip():
        raise DataError(path, "empty value", item=item, field=field)
    return value


def _open_text(path: Path) -> Any:
    try:
        return path.open(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as exc:
        raise DataError(path, f"cannot read file: {exc.strerror}") from None
