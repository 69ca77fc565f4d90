"""Baselines on disk: per model and task, the per-item scores and the run's provenance, under
``<reports>/baselines/<name>/<model>/<task>.json``. Written atomically (xdist workers write
their own models' files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from medgate.core.errors import BaselineError, ConfigError
from medgate.core.io import atomic_write, check_name
from medgate.core.types import TaskResult
from medgate.judging.paired import Reference


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


def check_baseline(root: Path, name: str, models: list[str]) -> None:
    """Before anything loads: baseline ``name`` exists, for every selected model."""
    folder = root / check_name(name, "baseline name")
    if not folder.is_dir():
        known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise ConfigError(f"--baseline {name}: no such baseline in {root} (saved: {', '.join(known) or 'none'}); "
                          f"save one with --save-baseline {name} on the run to compare with")
    for model in models:
        if not (folder / model).is_dir():
            saved = sorted(p.name for p in folder.iterdir() if p.is_dir())
            raise ConfigError(f"--baseline {name}: holds no results of model {model} (it holds: "
                              f"{', '.join(saved) or 'none'})")


def baseline_reference(root: Path, name: str, model: str, task: str, label: str | None = None) -> Reference:
    """Baseline ``name`` of a model and task as a reference to compare with."""
    data = load_baseline(root, name, model, task)
    return Reference(label or f"baseline {name}", data["provenance"],
                     {item["id"]: item["scores"] for item in data["items"]})


def check_baseline_fits(root: Path, name: str, model: str, expected: Mapping[str, Mapping[str, Any]]) -> None:
    """Before anything loads: baseline ``name`` of ``model`` was measured on this run's data,
    prompts, decoding and --limit, for every task it holds and this run has data for."""
    for task, wanted in expected.items():
        path = baseline_path(root, name, model, task)
        if not path.is_file():
            continue  # a task the baseline does not hold: that task's tests say so
        recorded = load_baseline(root, name, model, task)["provenance"]
        for key, value in wanted.items():
            if key == "limit" and key not in recorded:
                continue  # baselines written before the limit was recorded: the items are compared later
            if recorded.get(key) != value:
                raise ConfigError(f"--against {model}@{name}: {path} has {key} {recorded.get(key)!r}, this run "
                                  f"{value!r}; a baseline of other data, prompts or items cannot be compared")
