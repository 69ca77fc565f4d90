"""Allure results for a medgate test: labels, parameters and the metric as a JSON attachment.

Run-specific values (paths, devices) are excluded from Allure's history id so trends hold
between runs. allure-pytest is optional: without it these calls do nothing.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

try:
    import allure
except ImportError:  # pragma: no cover - allure-pytest is a declared dependency
    allure = None


def record_test(
    *, model: str, task: str, metric: str, verdict: Mapping[str, Any], details: Mapping[str, Any],
    run_specific: Mapping[str, Any],
) -> None:
    if allure is None:
        return
    allure.dynamic.parent_suite("medgate")
    allure.dynamic.suite(task)
    allure.dynamic.sub_suite(model)
    allure.dynamic.label("model", model)
    allure.dynamic.label("task", task)
    allure.dynamic.label("metric", metric)
    allure.dynamic.tag(f"model:{model}", f"task:{task}", f"metric:{metric}")
    # The value and threshold change between runs: excluded so the test keeps its history id.
    for name in ("value", "threshold", "status"):
        shown = verdict.get(name)
        allure.dynamic.parameter(name, "none" if shown is None else shown, excluded=True)
    for name, value in run_specific.items():
        allure.dynamic.parameter(name, value, excluded=True)
    allure.attach(
        json.dumps(details, indent=2, sort_keys=True, default=str),
        name=f"{task}-{metric}.json",
        attachment_type=allure.attachment_type.JSON,
    )


def write_environment(results_dir: str, properties: Mapping[str, str]) -> None:
    """environment.properties, written once by the controller."""
    from pathlib import Path

    lines = [f"{_escape(k)}={_escape(str(v))}" for k, v in sorted(properties.items())]
    path = Path(results_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("=", "\\=").replace(":", "\\:")
