"""A model's pass criteria (models.toml): thresholds, the regression rule and its tolerances,
non-inferiority margins, known gaps. They live here, apart from the model's engine settings, and
are checked against the run's task catalogue once collection has found every task: a task or
metric that no collected task has is an error naming the known ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from medgate.core.errors import ConfigError
from medgate.core.types import MetricSpec

SCALARS = ("gate_on", "tolerance", "regression", "inconclusive")  # type-checked by the registry
TABLES = ("thresholds", "tolerances", "margins", "expected_failures")
ALPHA = 0.05  # two-sided level of every comparison (95% intervals)


@dataclass(frozen=True)
class Criteria:
    gate_on: str = "point"  # "point": the value must clear the threshold; "interval": its 95% bound
    tolerance: float = 0.0  # regression tolerance for every metric, unless ``tolerances`` says otherwise
    regression: str = "significant_drop"  # the rule against a --baseline: significant_drop | non_inferiority
    inconclusive: str = "fail"  # an inconclusive non-inferiority comparison: fail | xfail
    thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    tolerances: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    margins: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    expected_failures: Mapping[str, str] = field(default_factory=dict)

    def threshold(self, task: str, metric: str) -> float | None:
        return self.thresholds.get(task, {}).get(metric)

    def tolerance_for(self, task: str, metric: str) -> float:
        return self.tolerances.get(task, {}).get(metric, self.tolerance)

    def margin_for(self, task: str, metric: str, spec: MetricSpec) -> float:
        return self.margins.get(task, {}).get(metric, spec.default_margin())

    def resolved(self) -> dict[str, Any]:
        """Everything that decides a verdict, as plain data (run records, attestations)."""
        return {"gate_on": self.gate_on, "tolerance": self.tolerance, "regression": self.regression,
                "inconclusive": self.inconclusive, "alpha": ALPHA,
                "thresholds": {t: dict(m) for t, m in sorted(self.thresholds.items())},
                "tolerances": {t: dict(m) for t, m in sorted(self.tolerances.items())},
                "margins": {t: dict(m) for t, m in sorted(self.margins.items())},
                "expected_failures": dict(sorted(self.expected_failures.items()))}


def check_criteria(raw: Mapping[str, Any], key: str, path: Path,
                   metrics: Mapping[str, Mapping[str, MetricSpec]] | None) -> Criteria:
    """A model's criteria from its (type-checked) models.toml entry, every task and metric
    checked against ``metrics`` (task -> metric -> spec, the run's catalogue); None: as written,
    unchecked (to recompute a recorded run's criteria digest, whose tasks may not be installed)."""

    def fail(where: str, message: str) -> ConfigError:
        return ConfigError(f"{path}: {where}: {message}")

    def check_task(task: str, where: str) -> None:
        if metrics is not None and task not in metrics:
            raise fail(where, f"unknown task (known: {', '.join(metrics) or '(none)'})")

    tables: dict[str, dict[str, dict[str, float]]] = {}
    for table in ("thresholds", "tolerances", "margins"):
        tables[table] = {}
        for task, values in raw.get(table, {}).items():
            task_key = f"{key}.{table}.{task}"
            check_task(task, task_key)
            tables[table][task] = {}
            for metric, value in values.items():
                if metrics is not None:
                    _check_value(metrics[task], table, task, metric, value, f"{task_key}.{metric}", fail)
                tables[table][task][metric] = float(value)
    for task in raw.get("expected_failures", {}):
        check_task(task, f"{key}.expected_failures.{task}")
    scalars = {name: raw[name] for name in SCALARS if name in raw}
    return Criteria(**scalars, **tables, expected_failures=dict(raw.get("expected_failures", {})))


def _check_value(specs: Mapping[str, MetricSpec], table: str, task: str, metric: str, value: float, where: str,
                 fail: Any) -> None:
    """A known metric, and a value in its range (a threshold) or in [0, span] (an allowed drop)."""
    if metric not in specs:
        raise fail(where, f"unknown metric (known for {task}: {', '.join(specs)})")
    low, high = specs[metric].bounds
    drop = table != "thresholds"
    if drop:
        low, high = 0.0, high - low
    if not low <= value <= high:
        bound = "allowed drop" if drop else "metric's range"
        raise fail(where, f"{value} is outside the {bound} [{low}, {high}]")


def resolve_criteria(models_file: Path, model: str, metrics: Mapping[str, Mapping[str, MetricSpec]] | None | str = "installed"
                     ) -> Criteria:
    """The criteria of one model of a models file, checked against ``metrics`` (default: the
    built-in and installed tasks; None: unchecked, as ``medgate verify`` recomputes a digest)."""
    from medgate.models.registry import load_registry
    from medgate.tasks.catalogue import builtin_catalogue

    registry = load_registry(models_file)
    key, raw = registry.criteria_of(registry.resolve(model))
    if metrics == "installed":
        metrics = builtin_catalogue().metrics()
    return check_criteria(raw, key, registry.path, metrics)  # type: ignore[arg-type]
