"""Baselines on disk: per model and task, the per-item scores and the run's provenance, under
``<reports>/baselines/<name>/<model>/<task>.json``. Written atomically (xdist workers write
their own models' files)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from medgate.errors import ConfigError
from medgate.types import TaskResult

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ConfigError(f"baseline name {name!r}: use letters, digits, '.', '_' and '-' only")
    return name


def baseline_path(root: Path, name: str, model: str, task: str) -> Path:
    return root / check_name(name) / model / f"{task}.json"


def save_baseline(root: Path, name: str, result: TaskResult, packages: dict[str, str]) -> Path:
    path = baseline_path(root, name, result.model, result.task)
    path.parent.mkdir(parents=True, exist_ok=True)
    provenance = {k: v for k, v in result.provenance.items() if k not in ("model_location", "dataset")}
    body = {
        "name": name, "model": result.model, "task": result.task,
        "provenance": {**provenance, "packages": packages},
        "metrics": result.metrics,
        # scores only: outputs may hold patient text and stay out of baselines
        "items": [{"id": item.id, "scores": dict(item.scores)} for item in result.items if not item.error],
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_baseline(root: Path, name: str, model: str, task: str) -> dict[str, Any]:
    path = baseline_path(root, name, model, task)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no baseline {name!r} for model {model} and task {task}; "
                          f"save one with --save-baseline {name}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable baseline ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list) or "provenance" not in data:
        raise ConfigError(f"{path}: not a medgate baseline file")
    return data
