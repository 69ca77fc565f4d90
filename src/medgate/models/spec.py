"""One model as the suite runs it: where its files are, the engine settings that change its
answers, its backend's own options and its pass criteria."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str  # "embedded", "path" or "hub"
    location: str  # embedded name, filesystem path or hub id
    revision: str | None = None
    backend: str = "vllm"
    options: Mapping[str, Any] = field(default_factory=dict)  # the backend's own options, as models.toml gave them
    chat_template: str | None = None  # resolved path to a Jinja file
    trust_remote_code: bool = False
    dtype: str = "auto"
    max_model_len: int = 4096
    seed: int = 0
    gate_on: str = "point"  # "point": the value must clear the threshold; "interval": its 95% bound
    tolerance: float = 0.0  # regression tolerance for every metric, unless ``tolerances`` says otherwise
    regression: str = "significant_drop"  # the rule against a --baseline: significant_drop | non_inferiority
    inconclusive: str = "fail"  # an inconclusive non-inferiority comparison: fail | xfail
    thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    tolerances: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    margins: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # non-inferiority margins
    expected_failures: Mapping[str, str] = field(default_factory=dict)
    registered: bool = True  # False: a path or hub id given on the command line
    inherits: str | None = None  # the model whose settings and pass criteria this one took
    published: str | None = None  # its name in the published CLUE figures (medgate table --published)

    def threshold(self, task: str, metric: str) -> float | None:
        return self.thresholds.get(task, {}).get(metric)

    def tolerance_for(self, task: str, metric: str) -> float:
        return self.tolerances.get(task, {}).get(metric, self.tolerance)

    def margin_for(self, task: str, metric: str, default: float) -> float:
        return self.margins.get(task, {}).get(metric, default)

    def gated(self) -> bool:
        """Whether models.toml gives this model any threshold."""
        return any(self.thresholds.values())
