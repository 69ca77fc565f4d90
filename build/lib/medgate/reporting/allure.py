"""Allure results for a medgate test: labels, parameters, the metric as a JSON attachment and
an Allure 3 performance metric; and the run files the controller writes once.

Run-specific values (paths, devices) are excluded from Allure's history id so trends hold
between runs. allure-pytest is optional: without it the per-test calls do nothing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

from medgate.core.io import atomic_write
from medgate.core.outcome import Outcome
from medgate.core.types import Chat, TaskResult

try:
    import allure
except ImportError:  # pragma: no cover - allure-pytest is a declared dependency
    allure = None


def record_test(outcome: Outcome, result: TaskResult, run_specific: Mapping[str, Any]) -> None:
    if allure is None:
        return
    model, task, metric = outcome.model, outcome.task, outcome.metric
    allure.dynamic.parent_suite("medgate" if outcome.against is None else "medgate comparisons")
    allure.dynamic.suite(task)
    allure.dynamic.sub_suite(model if outcome.against is None else f"{model} vs {outcome.against}")
    allure.dynamic.label("model", model)
    allure.dynamic.label("task", task)
    allure.dynamic.label("metric", metric)
    allure.dynamic.tag(f"model:{model}", f"task:{task}", f"metric:{metric}")
    if outcome.against is not None:
        allure.dynamic.label("candidate", model)
        allure.dynamic.label("reference", outcome.against)
        allure.dynamic.tag(f"reference:{outcome.against}")
    # Values change between runs: excluded so the test keeps its history id and its trend.
    comparison = outcome.comparison
    shown = {
        "value": outcome.value,
        "interval (95%)": None if outcome.low is None else f"{outcome.low:.4f} to {outcome.high:.4f}",
        "threshold": outcome.threshold,
        "gate on": outcome.gate_on,
        "baseline drop": comparison.drop if comparison and comparison.rule == "significant_drop" else None,
        "difference (95% CI)": None if comparison is None else "{:+.4f} [{:+.4f}, {:+.4f}]".format(*comparison.difference),
        "margin": comparison.margin if comparison else None,
        "comparison verdict": comparison.verdict if comparison else None,
        "p-value (Holm)": comparison.p_adjusted if comparison else None,
        "status": outcome.status,
    }
    for name, value in shown.items():
        allure.dynamic.parameter(name, "none" if value is None else value, excluded=True)
    for name, value in run_specific.items():
        allure.dynamic.parameter(name, value, excluded=True)
    details = {**outcome.to_dict(), "per_item": [
        {"id": item.id, "scores": dict(item.scores), "error": item.error} for item in result.items
    ]}
    allure.attach(json.dumps(details, indent=2, sort_keys=True, default=str), name=f"{task}-{metric}.json",
                  attachment_type=allure.attachment_type.JSON)


def metric_key(model: str, task: str, metric: str) -> str:
    """Allure 3 keeps a metric's history by key alone, so the key names the model too."""
    return f"{model}.{task}.{metric}"


def write_perf(results_dir: str, outcome: Outcome, *, start_ms: int, stop_ms: int) -> None:
    """One Allure 3 performance metric (`<uuid>-perf.json`), so the report trends it across runs:
    a metric's value, or for a comparison the difference candidate - reference."""
    model, task, metric, value = outcome.model, outcome.task, outcome.metric, outcome.value
    if outcome.against is not None:
        if outcome.comparison is None:
            return
        model, metric, value = f"{model}-vs-{outcome.against}", f"{metric}.difference", outcome.comparison.difference[0]
    record = [{"id": f"{model}/{task}/{metric}", "key": metric_key(model, task, metric), "value": value,
               "start": start_ms, "stop": stop_ms, "group": model,
               "better": "higher" if outcome.higher_is_better else "lower"}]
    # atomic: Allure never reads a half-written file from another worker
    atomic_write(Path(results_dir) / f"{uuid.uuid4()}-perf.json", json.dumps(record))


def sample_records(result: TaskResult, chats: Sequence[Chat]) -> list[dict[str, Any]]:
    """Per-item prompt, output and scores of a computed task."""
    return [{"id": item.id, "prompt": list(map(dict, chat)), "output": item.output, "scores": dict(item.scores),
             "error": item.error} for item, chat in zip(result.items, chats)]


def attach_samples(task: str, samples: list[dict[str, Any]]) -> None:
    """Per-item prompts and outputs (shipped synthetic data, or user data with --attach-samples)."""
    attach_json(f"{task}-samples.json", samples)


def attach_json(name: str, body: Any) -> None:
    if allure is None:
        return
    allure.attach(json.dumps(body, indent=1, default=str), name=name, attachment_type=allure.attachment_type.JSON)


# Allure 2 category rules; the messages come from medgate's verdicts and errors.
CATEGORIES = [
    {"name": "Below threshold", "matchedStatuses": ["failed"],
     "messageRegex": "(?s).*(below the floor|above the ceiling).*"},
    {"name": "Regression against the baseline", "matchedStatuses": ["failed"],
     "messageRegex": "(?s).*regressed against the baseline.*"},
    {"name": "Engine error", "matchedStatuses": ["broken", "failed"], "messageRegex": "(?s).*(EngineError|EmbeddedModelError).*"},
    {"name": "Data error", "matchedStatuses": ["broken", "failed"],
     "messageRegex": "(?s).*(DataError|BaselineMismatch|BaselineError|ConfigError).*"},
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
    folder = Path(results_dir)
    lines = [f"{_escape(k)}={_escape(str(v))}" for k, v in sorted(properties.items())]
    atomic_write(folder / "environment.properties", "\n".join(lines) + "\n")
    atomic_write(folder / "categories.json", json.dumps(CATEGORIES, indent=1))
    executor = executor_info(environ)
    if executor:
        atomic_write(folder / "executor.json", json.dumps(executor, indent=1))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("=", "\\=").replace(":", "\\:")
