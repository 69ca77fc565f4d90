"""Baselines on disk: per model and task, the per-item scores and the run's provenance, under
``<reports>/baselines/<name>/<model>/<task>.json``. Written atomically (xdist workers write
their own models' files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medgate.core.errors import BaselineError
from medgate.core.io import atomic_write, check_name
from medgate.core.types import TaskResult


def baseline_path(root: Path, name: str, model: str, task: str) -> Path:
    return root / check_name(name, "baseline name") / model / f"{task}.json"


def save_baseline(root: Path, name: str, result: TaskResult, packages: dict[str, str]) -> Path:
    path = baseline_path(root, name, result.model, result.task)
    # paths of this machine stay out; the prompt source, its commit and template hash stay in
    provenance = {k: v for k, v in result.provenance.items() if k not in ("model_location", "dataset", "reference_dir")}
    body = {
        "name": name, "model": result.model, "task": result.task,
        "provenance": {**provenance, "packages": packages},
        "metrics": result.metrics,
        # scores only: outputs may hold patient text and stay out of baselines
        "items": [{"id": item.id, "scores": dict(item.scores)} for item in result.items if not item.error],
    }
    return atomic_write(path, json.dumps(body, indent=1, sort_keys=True))


def load_baseline(root: Path, name: str, model: str, task: str) -> dict[str, Any]:
    path = baseline_path(root, name, model, task)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: no baseline {name!r} for model {model} and task {task}; "
                          f"save one with --save-baseline {name}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{path}: unreadable baseline ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list) or "provenance" not in data:
        raise BaselineError(f"{path}: not a medgate baseline file")
    return data
