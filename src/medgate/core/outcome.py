"""The verdict record: what the gate decided for one model, task and metric. It travels from
the test (on a worker) to the controller and to every report, as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Mapping

# pass / fail: the gate decided. no_threshold / not_computed: nothing to gate (the test skips).
# error: the task could not run or be scored. known_gap: a failure that models.toml expects.
# skipped: the task's data file is not in the data folder (the documented skip).
Status = Literal["pass", "fail", "no_threshold", "not_computed", "error", "known_gap", "skipped"]
STATUSES: tuple[str, ...] = ("pass", "fail", "no_threshold", "not_computed", "error", "known_gap", "skipped")


@dataclass(frozen=True)
class Comparison:
    """One metric of a run compared item by item with a baseline."""

    task: str
    metric: str
    test: str  # "exact McNemar" or "paired bootstrap"
    n_pairs: int
    baseline: float
    current: float
    drop: float  # positive = worse, in the metric's own direction
    drop_low: float  # 95% interval of the drop
    drop_high: float
    p_value: float
    p_adjusted: float = 1.0
    tolerance: float = 0.0
    regressed: bool = False

    def describe(self) -> str:
        return (f"{self.task} {self.metric} dropped by {self.drop:.4f} (95% CI {self.drop_low:.4f} to "
                f"{self.drop_high:.4f}; {self.baseline:.4f} -> {self.current:.4f}, {self.n_pairs} paired items), "
                f"{self.test} p = {self.p_value:.4g}, Holm-adjusted p = {self.p_adjusted:.4g}, "
                f"tolerance {self.tolerance:.4f}")


@dataclass(frozen=True)
class Outcome:
    """A verdict with the evidence behind it (value, interval, threshold, comparison, provenance)."""

    model: str
    task: str
    metric: str
    status: Status
    message: str
    value: float | None = None
    low: float | None = None  # 95% bootstrap interval over items
    high: float | None = None
    threshold: float | None = None
    gate_on: str = "point"
    higher_is_better: bool = True
    comparison: Comparison | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown outcome status {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("comparison") is not None:
            values["comparison"] = Comparison(**values["comparison"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        return cls.from_dict(json.loads(text))
