"""The table across models, like the paper's: rows models, columns task metrics, built from the
stored results of every run under reports/runs/ (the latest value per model, task and metric)."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from pathlib import Path
from typing import Sequence

from medgate.core.io import atomic_write
from medgate.core.outcome import Outcome

COLUMNS = [  # the paper's headline metrics first, then the rest alphabetically
    ("mednli", "accuracy"), ("meqsum", "rougeL"), ("meqsum", "bertscore_f1"), ("problem_summary", "rougeL"),
    ("problem_summary", "bertscore_f1"), ("problem_summary", "umls_f1"), ("medisumqa", "rougeL"),
    ("medisumqa", "bertscore_f1"), ("medisumqa", "umls_f1"), ("medisumcode", "exact_f1"),
    ("medisumcode", "approx_f1"), ("medisumcode", "valid_ratio"), ("longhealth", "accuracy_task1"),
    ("longhealth", "accuracy_task2"), ("longhealth", "accuracy_task3"),
]


def store_run(reports_dir: Path, outcomes: Sequence[Outcome]) -> Path:
    """Keep this run's verdicts (values and provenance, no patient text) for later tables."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = reports_dir / "runs" / f"{stamp}-{uuid.uuid4().hex[:8]}.json"
    body = {"finished_ns": time.time_ns(), "outcomes": [o.to_dict() for o in outcomes]}
    return atomic_write(path, json.dumps(body, default=str))


def latest_values(reports_dir: Path) -> dict[tuple[str, str, str], Outcome]:
    """The newest outcome per (model, task, metric) over all stored runs."""
    latest: dict[tuple[str, str, str], Outcome] = {}
    runs = [json.loads(path.read_text(encoding="utf-8")) for path in (reports_dir / "runs").glob("*.json")]
    for run in sorted(runs, key=lambda r: r.get("finished_ns", 0)):  # file names may tie within a second
        for o in map(Outcome.from_dict, run["outcomes"]):
            if o.value is not None and o.against is None:  # a comparison repeats its candidate's value
                latest[(o.model, o.task, o.metric)] = o
    return latest


def models_table(reports_dir: Path) -> tuple[list[str], list[list[str]]]:
    latest = latest_values(reports_dir)
    present = {(t, m) for _, t, m in latest}
    columns = [c for c in COLUMNS if c in present] + sorted(present - set(COLUMNS))
    header = ["model"] + [f"{t} {m}" for t, m in columns]
    rows = []
    for model in sorted({m for m, _, _ in latest}):
        row = [model]
        for task, metric in columns:
            o = latest.get((model, task, metric))
            row.append("" if o is None or o.value is None else f"{100 * o.value:.2f}")  # percent, as the paper prints
        rows.append(row)
    return header, rows


def write_models_table(reports_dir: Path) -> tuple[Path, Path]:
    header, rows = models_table(reports_dir)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(cell or "-" for cell in row) + " |" for row in rows]
    md_path = atomic_write(reports_dir / "models_table.md",
                           "Values in percent; the latest run of each model, task and metric.\n\n" + "\n".join(md) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    csv_path = atomic_write(reports_dir / "models_table.csv", buffer.getvalue())
    return md_path, csv_path
