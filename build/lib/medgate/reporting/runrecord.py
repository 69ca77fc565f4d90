"""The run record, reports/runs/<run_id>.json: every verdict with its provenance, each model's
per-item scores (ids and numbers, never text), the resolved pass criteria, the models' sources,
medgate's version and commit, and when the run started and finished. Later tables, the release
record and `medgate verify` read it."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Mapping, Sequence

from medgate.core.io import atomic_write
from medgate.core.outcome import Outcome
from medgate.core.paths import SOURCE_ROOT


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def medgate_identity() -> dict[str, str | None]:
    """medgate's version, and the commit of its checkout when it runs from one (else None)."""
    try:
        found = version("medgate")
    except PackageNotFoundError:
        found = "unknown"
    commit = None
    if (SOURCE_ROOT / ".git").exists():
        try:
            proc = subprocess.run(["git", "-C", str(SOURCE_ROOT), "rev-parse", "HEAD"], capture_output=True,
                                  text=True, timeout=10)
            commit = proc.stdout.strip() or None if proc.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"version": found, "commit": commit}


def build_record(run_id: str, started: float, outcomes: Sequence[Outcome], verdict: str,
                 items: Mapping[str, Mapping[str, list[dict[str, Any]]]], criteria: Mapping[str, Mapping[str, Any]],
                 models: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    finished = time.time()
    return {"run_id": run_id, "started": iso(started), "finished": iso(finished), "finished_ns": time.time_ns(),
            "verdict": verdict, "medgate": medgate_identity(), "outcomes": [o.to_dict() for o in outcomes],
            "items": {m: dict(t) for m, t in items.items()}, "criteria": dict(criteria), "models": dict(models)}


def write_run_record(reports_dir: Path, record: Mapping[str, Any]) -> Path:
    return atomic_write(reports_dir / "runs" / f"{record['run_id']}.json", json.dumps(record, default=str))
