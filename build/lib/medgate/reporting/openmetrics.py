"""reports/metrics.txt in OpenMetrics text format (GitLab's metrics report shows how each line
changed against the target branch): a value per model, task and metric, a difference per
comparison, and whether each gate failed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from medgate.core.io import atomic_write
from medgate.core.outcome import Outcome

# name -> help; every family is a gauge
FAMILIES = {
    "medgate_metric_value": "A metric's value on a task (the model's own test).",
    "medgate_comparison_difference": "Candidate minus reference on a task metric, in the metric's units.",
    "medgate_gate_failed": "1 when the test failed or errored, else 0.",
}


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    body = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
    return f"{name}{{{body}}} {_number(value)}"


def metrics_text(outcomes: Sequence[Outcome]) -> str:
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {name: {} for name in FAMILIES}

    def add(name: str, labels: dict[str, str], value: float) -> None:
        samples[name][tuple(labels.items())] = value  # one sample per label set: the format forbids repeats

    for o in outcomes:
        if o.against is None:
            labels = {"model": o.model, "task": o.task, "metric": o.metric}
            if o.value is not None:
                add("medgate_metric_value", labels, o.value)
        else:
            labels = {"candidate": o.model, "reference": o.against, "task": o.task, "metric": o.metric}
            if o.comparison is not None:
                add("medgate_comparison_difference", labels, o.comparison.difference[0])
        add("medgate_gate_failed", {**labels, "kind": "own" if o.against is None else "comparison"},
            float(o.status in ("fail", "error")))
    lines = []
    for name, help_text in FAMILIES.items():
        if not samples[name]:
            continue
        lines += [f"# TYPE {name} gauge", f"# HELP {name} {help_text}"]
        lines += [_sample(name, dict(labels), value) for labels, value in sorted(samples[name].items())]
    return "\n".join([*lines, "# EOF"]) + "\n"


def write_metrics(reports_dir: Path, outcomes: Sequence[Outcome]) -> Path:
    return atomic_write(reports_dir / "metrics.txt", metrics_text(outcomes))
