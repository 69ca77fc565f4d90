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
    # Values change between runs: excluded so the test keeps its history id and its trend.
    comparison = verdict.get("comparison") or {}
    low, high = verdict.get("low"), verdict.get("high")
    shown = {
        "value": verdict.get("value"),
        "interval (95%)": None if low is None else f"{low:.4f} to {high:.4f}",
        "threshold": verdict.get("threshold"),
        "gate on": verdict.get("gate_on"),
        "baseline drop": comparison.get("drop"),
        "p-value (Holm)": comparison.get("p_adjusted"),
        "status": verdict.get("status"),
    }
    for name, value in shown.items():
        allure.dynamic.parameter(name, "none" if value is None else value, excluded=True)
    for name, value in run_specific.items():
        allure.dynamic.parameter(name, value, excluded=True)
    allure.attach(
        json.dumps(details, indent=2, sort_keys=True, default=str),
        name=f"{task}-{metric}.json",
        attachment_type=allure.attachment_type.JSON,
    )


def metric_key(model: str, task: str, metric: str) -> str:
    """Allure 3 keeps a metric's history by key alone, so the key names the model too."""
    return f"{model}.{task}.{metric}"


def write_perf(results_dir: str, *, model: str, task: str, metric: str, value: float, better: str,
               start_ms: int, stop_ms: int) -> None:
    """One Allure 3 performance metric (`<uuid>-perf.json`), so the report trends it across runs."""
    import os
    import uuid
    from pathlib import Path

    record = [{"id": f"{model}/{task}/{metric}", "key": metric_key(model, task, metric), "value": value,
               "start": start_ms, "stop": stop_ms, "group": model, "better": better}]
    folder = Path(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4()}-perf.json"
    tmp = folder / f".{name}.tmp"  # not read by Allure until renamed
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, folder / name)


def attach_samples(task: str, samples: list[Mapping[str, Any]]) -> None:
    """Per-item prompts and outputs (shipped synthetic data, or user data with --attach-samples)."""
    if allure is None:
        return
    allure.attach(json.dumps(samples, indent=1, default=str), name=f"{task}-samples.json",
                  attachment_type=allure.attachment_type.JSON)


# Allure 2 category rules; the messages come from medgate's verdicts and errors.
CATEGORIES = [
    {"name": "Below threshold", "matchedStatuses": ["failed"],
     "messageRegex": "(?s).*(below the floor|above the ceiling).*"},
    {"name": "Regression against the baseline", "matchedStatuses": ["failed"],
     "messageRegex": "(?s).*regressed against the baseline.*"},
    {"name": "Engine error", "matchedStatuses": ["broken", "failed"], "messageRegex": "(?s).*EngineError.*"},
    {"name": "Data error", "matchedStatuses": ["broken", "failed"],
     "messageRegex": "(?s).*(DataError|BaselineMismatch|ConfigError).*"},
    {"name": "Metric not computed", "matchedStatuses": ["skipped"], "messageRegex": "(?s).*not computed.*"},
]

# CI systems whose variables describe a build: (name, type, build name variable, URL builder)
_EXECUTORS = [
    ("GitHub Actions", "github", "GITHUB_RUN_NUMBER",
     lambda e: f"{e.get('GITHUB_SERVER_URL', '')}/{e.get('GITHUB_REPOSITORY', '')}/actions/runs/{e.get('GITHUB_RUN_ID', '')}"),
    ("GitLab CI", "gitlab", "CI_PIPELINE_IID", lambda e: e.get("CI_PIPELINE_URL", "")),
    ("Jenkins", "jenkins", "BUILD_NUMBER", lambda e: e.get("BUILD_URL", "")),
]


def executor_info(environ: Mapping[str, str]) -> dict[str, str] | None:
    """executor.json content from CI variables (never tokens), or None outside CI."""
    for name, kind, build_var, url in _EXECUTORS:
        if environ.get(build_var):
            return {"name": name, "type": kind, "buildName": f"{name} #{environ[build_var]}", "buildUrl": url(environ),
                    "buildOrder": environ[build_var]}
    if environ.get("CI"):
        return {"name": "CI", "type": "ci", "buildName": "CI run"}
    return None


def write_run_files(results_dir: str, properties: Mapping[str, str], environ: Mapping[str, str]) -> None:
    """environment.properties, categories.json and (in CI) executor.json: once, by the controller."""
    from pathlib import Path

    write_environment(results_dir, properties)
    folder = Path(results_dir)
    (folder / "categories.json").write_text(json.dumps(CATEGORIES, indent=1), encoding="utf-8")
    executor = executor_info(environ)
    if executor:
        (folder / "executor.json").write_text(json.dumps(executor, indent=1), encoding="utf-8")


def write_environment(results_dir: str, properties: Mapping[str, str]) -> None:
    """environment.properties, written once by the controller."""
    from pathlib import Path

    lines = [f"{_escape(k)}={_escape(str(v))}" for k, v in sorted(properties.items())]
    path = Path(results_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("=", "\\=").replace(":", "\\:")
