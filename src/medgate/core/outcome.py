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
    """One metric of a candidate compared item by item with a reference: a stored baseline or
    another model (or another model's baseline)."""

    task: str
    metric: str
    reference: str  # what it was compared with, e.g. "baseline v1" or "model meditron-7b"
    rule: str  # "significant_drop" (a significant drop beyond the margin fails) or "non_inferiority"
    test: str  # the p-value's test: "exact McNemar" (0/1 metrics) or "sign-flip" (a permutation test)
    n_pairs: int
    reference_value: float
    candidate_value: float
    drop: float  # how much worse the candidate is, in the metric's own direction (negative: better)
    drop_low: float  # 95% interval of the drop
    drop_high: float
    p_value: float  # two-sided, of "no difference"
    p_adjusted: float = 1.0  # Holm, across the comparison's family
    margin: float = 0.0  # the tolerance (significant_drop) or the non-inferiority margin
    verdict: str = ""  # regressed / no regression; better / not worse / worse / inconclusive
    fails: bool = False  # the gate fails on this comparison
    higher_is_better: bool = True
    identical: bool = False  # the same model on both sides (equal generation identity): the difference is exactly 0
    spread: float = 0.0  # standard deviation of the per-item differences
    items_to_decide: int | None = None  # inconclusive: paired items that would decide at the observed spread
    n_worse: int = 0  # items that went right -> wrong (0/1 metrics) or whose score dropped
    n_better: int = 0  # items that went wrong -> right, or whose score rose
    flips_worse: tuple[str, ...] = ()  # their ids: every flip of a 0/1 metric, else the largest drops
    flips_better: tuple[str, ...] = ()

    @property
    def difference(self) -> tuple[float, float, float]:
        """candidate - reference in the metric's own units, with its 95% interval."""
        if self.higher_is_better:
            return -self.drop, -self.drop_high, -self.drop_low
        return self.drop, self.drop_low, self.drop_high

    def describe(self) -> str:
        stats = f"{self.test} p = {self.p_value:.4g}, Holm-adjusted p = {self.p_adjusted:.4g}"
        if self.rule == "significant_drop":
            return (f"{self.task} {self.metric} dropped by {self.drop:.4f} (95% CI {self.drop_low:.4f} to "
                    f"{self.drop_high:.4f}; {self.reference_value:.4f} -> {self.candidate_value:.4f}, {self.n_pairs} "
                    f"paired items), {stats}, tolerance {self.margin:.4f}")
        diff, low, high = self.difference
        text = (f"{self.task} {self.metric} {self.verdict} than {self.reference}: {self.candidate_value:.4f} vs "
                f"{self.reference_value:.4f}, difference {diff:+.4f} (95% CI {low:+.4f} to {high:+.4f}, {self.n_pairs} "
                f"paired items), margin {self.margin:.4f}, {stats}")
        if self.identical:
            text += " (the same model: equal weights, engine, settings and chat template)"
        if self.items_to_decide is not None:
            text += f"; about {self.items_to_decide} paired items would decide at the observed spread"
        return text

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        values = dict(data)
        for key in ("flips_worse", "flips_better"):
            values[key] = tuple(values.get(key, ()))
        return cls(**{k: v for k, v in values.items() if k in {f.name for f in fields(cls)}})


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
    against: str | None = None  # a comparison test: the reference model (or model@baseline) of the candidate
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
            values["comparison"] = Comparison.from_dict(values["comparison"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        return cls.from_dict(json.loads(text))
