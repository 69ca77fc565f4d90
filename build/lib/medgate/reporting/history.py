"""The summary's trend between CI runs: one JSON line per run in a history file that CI keeps
in its cache (each comparison's difference, each metric's value), and reports/trend.md and
trend.csv built from it, so a comparison's difference across runs survives a fresh runner."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from medgate.core.errors import DataError
from medgate.core.io import atomic_write
from medgate.core.outcome import Outcome
from medgate.reporting.markdown import table

TREND_HEADER = ["run", "time", "candidate", "reference", "task", "metric", "difference", "low", "high", "verdict"]
SHOWN_RUNS = 10  # trend.md shows the latest runs; trend.csv has them all


def run_entry(outcomes: Sequence[Outcome], run_id: str, when: str | None = None) -> dict[str, Any]:
    comparisons = []
    values = []
    for o in sorted(outcomes, key=lambda o: (o.model, o.against or "", o.task, o.metric)):
        c = o.comparison
        if o.against is not None and c is not None:
            diff, low, high = c.difference
            comparisons.append({"candidate": o.model, "reference": o.against, "task": o.task, "metric": o.metric,
                                "difference": diff, "low": low, "high": high, "verdict": c.verdict})
        elif o.against is None and o.value is not None:
            values.append({"model": o.model, "task": o.task, "metric": o.metric, "value": o.value, "status": o.status})
    return {"run": run_id, "time": when or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "comparisons": comparisons, "values": values}


def read_history(file: Path) -> list[dict[str, Any]]:
    """The runs in the file, oldest first; a missing file is an empty history."""
    if not file.exists():
        return []
    runs = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(file, f"not a JSON line ({exc.msg}); delete the file to start a new history",
                            item=f"line {number}") from None
        if not isinstance(entry, dict) or "run" not in entry:
            raise DataError(file, "not a medgate run (no 'run' key)", item=f"line {number}")
        runs.append(entry)
    return runs


def append_history(file: Path, outcomes: Sequence[Outcome], run_id: str, when: str | None = None) -> Path:
    """Add this run (a run id seen before replaces its entry: a retried job counts once)."""
    runs = [r for r in read_history(file) if r["run"] != run_id]
    runs.append(run_entry(outcomes, run_id, when))
    return atomic_write(file, "".join(json.dumps(r, sort_keys=True) + "\n" for r in runs))


def run_id(environ: Mapping[str, str]) -> str:
    """The CI run's id (GitHub: run id and attempt; GitLab: pipeline id), else a UTC time stamp."""
    if environ.get("GITHUB_RUN_ID"):
        return f"github-{environ['GITHUB_RUN_ID']}-{environ.get('GITHUB_RUN_ATTEMPT', '1')}"
    if environ.get("CI_PIPELINE_ID"):
        return f"gitlab-{environ['CI_PIPELINE_ID']}"
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def trend_rows(runs: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """One row per run and comparison, grouped by comparison, oldest run first."""
    rows = [[r["run"], r.get("time", ""), c["candidate"], c["reference"], c["task"], c["metric"],
             f"{c['difference']:+.4f}", f"{c['low']:+.4f}", f"{c['high']:+.4f}", c["verdict"]]
            for r in runs for c in r.get("comparisons", [])]
    order = {r["run"]: i for i, r in enumerate(runs)}
    return sorted(rows, key=lambda row: (row[2], row[3], row[4], row[5], order[row[0]]))


def write_trend(reports_dir: Path, file: Path) -> list[Path]:
    """reports/trend.md (each comparison's difference over the latest runs) and trend.csv."""
    runs = read_history(file)
    rows = trend_rows(runs)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TREND_HEADER)
    writer.writerows(rows)
    csv_path = atomic_write(reports_dir / "trend.csv", buffer.getvalue())
    latest = [r["run"] for r in runs[-SHOWN_RUNS:]]
    series: dict[tuple[str, ...], dict[str, str]] = {}
    for row in rows:
        series.setdefault(tuple(row[2:6]), {})[row[0]] = row[6]
    header = ["candidate", "reference", "task", "metric", *latest]
    cells = [[*key, *(by_run.get(run, "-") for run in latest)] for key, by_run in series.items()]
    md = [f"# Trend of comparisons ({len(runs)} runs in {file.name}; the latest {len(latest)} shown)", "",
          "Difference = candidate - reference per run, oldest first; every run and interval is in trend.csv.", "",
          *table(header, cells)]
    return [atomic_write(reports_dir / "trend.md", "\n".join(md) + "\n"), csv_path]
