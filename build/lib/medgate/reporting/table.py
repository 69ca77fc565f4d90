"""The table across models, like the paper's: rows models, columns task metrics, built from the
stored results of every run under reports/runs/, one section per data set.

A data set is what a value was measured on (core/comparable.py): the data source, the --limit
and, for each task, the data file's hash and item count. Runs share a section when their source
and limit agree and, for every task they both ran, so do the file and the item count; each cell
is then the latest value of its model, task and metric on that data set. Within a section a cell
measured with other prompts, encoder or decoding than most of its task's cells is marked, with
the reason under the section. The CSV has one row per model and data set, every fact a column.
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Mapping, Sequence

from medgate.core.comparable import (
    NOT_USED, SETUP_FIELDS, Conditions, conditions, describe_decoding, describe_encoder, describe_limit,
    describe_prompts, describe_source, differences, measured_on, short_hash,
)
from medgate.core.errors import DataError
from medgate.core.io import atomic_write
from medgate.core.outcome import Outcome

COLUMNS = [  # the paper's headline metrics first, then the rest alphabetically
    ("mednli", "accuracy"), ("meqsum", "rougeL"), ("meqsum", "bertscore_f1"), ("problem_summary", "rougeL"),
    ("problem_summary", "bertscore_f1"), ("problem_summary", "umls_f1"), ("medisumqa", "rougeL"),
    ("medisumqa", "bertscore_f1"), ("medisumqa", "umls_f1"), ("medisumcode", "exact_f1"),
    ("medisumcode", "approx_f1"), ("medisumcode", "valid_ratio"), ("longhealth", "accuracy_task1"),
    ("longhealth", "accuracy_task2"), ("longhealth", "accuracy_task3"),
]
_SOURCE_ORDER = {"user": 0, "synthetic": 1}  # the real data first; unrecorded sources last

Key = tuple[str, str, str]  # model, task, metric


def store_run(reports_dir: Path, outcomes: Sequence[Outcome]) -> Path:
    """Keep this run's verdicts (values and provenance, no patient text) for later tables."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = reports_dir / "runs" / f"{stamp}-{uuid.uuid4().hex[:8]}.json"
    body = {"finished_ns": time.time_ns(), "outcomes": [o.to_dict() for o in outcomes]}
    return atomic_write(path, json.dumps(body, default=str))


@dataclass(frozen=True)
class Run:
    """One stored run: when it finished, its file's name (a tie-break) and its verdicts."""

    finished_ns: int
    name: str
    outcomes: tuple[Outcome, ...]


def load_runs(reports_dir: Path) -> list[Run]:
    """Every stored run, newest first. Keys other than "outcomes" and "finished_ns" are ignored."""
    runs = []
    for path in sorted((reports_dir / "runs").glob("*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            outcomes = tuple(Outcome.from_dict(o) for o in body["outcomes"])
            finished = int(body.get("finished_ns", 0))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DataError(path, f"not a medgate run record ({type(exc).__name__}: {exc}); move it out of runs/")
        runs.append(Run(finished, path.name, outcomes))
    return sorted(runs, key=lambda r: (r.finished_ns, r.name), reverse=True)  # file names may tie within a second


def tabled(outcome: Outcome) -> bool:
    """A value of the model itself (a comparison repeats its candidate's value)."""
    return outcome.value is not None and outcome.against is None


def latest_values(reports_dir: Path) -> dict[Key, Outcome]:
    """The newest outcome per (model, task, metric) over all stored runs, whatever its data."""
    latest: dict[Key, Outcome] = {}
    for run in reversed(load_runs(reports_dir)):
        for o in filter(tabled, run.outcomes):
            latest[(o.model, o.task, o.metric)] = o
    return latest


@dataclass(frozen=True)
class DataFile:
    """One task's data in a section."""

    dataset_hash: str | None
    n_items: int | None
    name: str  # the file's name, without its folder ("" where not recorded)


@dataclass
class Section:
    """One data set: its source and limit, each task's file, and the latest cell per key."""

    data_source: str | None
    limit: int | None
    files: dict[str, DataFile] = field(default_factory=dict)
    cells: dict[Key, Outcome] = field(default_factory=dict)  # inserted newest first
    newest_ns: int = 0

    def fits(self, source: str | None, limit: int | None, files: Mapping[str, DataFile]) -> bool:
        if (source, limit) != (self.data_source, self.limit):
            return False
        return all(t not in self.files or _same_data(self.files[t], f) for t, f in files.items())

    @property
    def title(self) -> str:
        return f"{describe_source(self.data_source)}, {describe_limit(self.limit)}"

    @property
    def columns(self) -> list[tuple[str, str]]:
        present = {(t, m) for _, t, m in self.cells}
        return [c for c in COLUMNS if c in present] + sorted(present - set(COLUMNS))

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(t for t, _ in self.columns))

    @property
    def models(self) -> list[str]:
        return sorted({m for m, _, _ in self.cells})

    def majority(self, task: str) -> Conditions:
        """The set-up most of the task's cells share (a tie: the newest cell's)."""
        measured = [conditions(o.provenance) for (_, t, _), o in self.cells.items() if t == task]
        setup, _ = Counter(c.setup for c in measured).most_common(1)[0]
        return next(c for c in measured if c.setup == setup)

    def reasons(self) -> dict[Key, str]:
        """Each cell set up unlike most of its task's cells, with why."""
        majorities = {t: self.majority(t) for t in self.tasks}
        out = {}
        for key, o in self.cells.items():
            found = differences(measured_on(o), majorities[key[1]], fields=SETUP_FIELDS)
            if found:
                out[key] = "; ".join(found)
        return out


def _same_data(a: DataFile, b: DataFile) -> bool:
    return (a.dataset_hash, a.n_items) == (b.dataset_hash, b.n_items)


def _data_file(o: Outcome) -> DataFile:
    c = measured_on(o)
    return DataFile(c.dataset_hash, c.n_items, PurePath(str(o.provenance.get("dataset", ""))).name)


def sections(runs: Sequence[Run]) -> list[Section]:
    """The runs (newest first) split into data sets; the newest value per key in each.

    A run's values on one source and limit join the first section that has the same file and
    item count for every task they share, else open one; a run that somehow holds two files of
    one task is placed task by task."""
    out: list[Section] = []
    for run in runs:
        groups: dict[tuple[Any, Any], list[Outcome]] = {}
        for o in filter(tabled, run.outcomes):
            c = measured_on(o)
            groups.setdefault((c.data_source, c.limit), []).append(o)
        for (source, limit), group in groups.items():
            files: dict[str, set[tuple[Any, Any]]] = {}
            for o in group:
                f = _data_file(o)
                files.setdefault(o.task, set()).add((f.dataset_hash, f.n_items))
            units = [group] if all(len(v) == 1 for v in files.values()) else _by_file(group)
            for unit in units:
                _place(out, source, limit, unit, run.finished_ns)
    return sorted(out, key=lambda s: (_SOURCE_ORDER.get(s.data_source or "", 2), -1 if s.limit is None else s.limit,
                                      -s.newest_ns))


def _by_file(group: list[Outcome]) -> list[list[Outcome]]:
    units: dict[tuple[str, DataFile], list[Outcome]] = {}
    for o in group:
        f = _data_file(o)
        units.setdefault((o.task, DataFile(f.dataset_hash, f.n_items, "")), []).append(o)
    return list(units.values())


def _place(out: list[Section], source: str | None, limit: int | None, unit: list[Outcome], finished_ns: int) -> None:
    files = {o.task: _data_file(o) for o in reversed(unit)}  # reversed: a task's first value names its file
    section = next((s for s in out if s.fits(source, limit, files)), None)
    if section is None:
        section = Section(source, limit, newest_ns=finished_ns)
        out.append(section)
    for task, data in files.items():
        section.files.setdefault(task, data)
    for o in unit:
        section.cells.setdefault((o.model, o.task, o.metric), o)


def models_table(reports_dir: Path) -> list[Section]:
    """Every data set of the stored runs, the real data first."""
    return sections(load_runs(reports_dir))


def percent(o: Outcome) -> str:
    return f"{100 * o.value:.2f}" if o.value is not None else ""  # percent, as the paper prints


def describe_setup(c: Conditions) -> tuple[str, str, str]:
    """Prompts (with their version), encoder and decoding, as the tables show them."""
    prompts = f"{describe_prompts(c.prompts)} ({c.prompt_version or 'version not recorded'})"
    encoder = "" if c.encoder == NOT_USED else describe_encoder(c.encoder)
    return prompts, encoder, describe_decoding(c.decoding)


INTRO = ("Values in percent. One section per data set: runs on the same data source with the same `--limit` "
         "and, for every task they share, the same data file (hash) and item count. Each cell is the latest value "
         "of its model, task and metric on that data set. A cell measured with other prompts, BERTScore encoder or "
         "decoding than most of its task's cells carries a mark [n], explained under its section.")


def markdown(chosen: Sequence[Section], choice: str = "") -> str:
    lines = ["# The table across models", "", INTRO]
    if choice:
        lines += ["", f"Chosen: {choice}."]
    if not chosen:
        lines += ["", "No stored run has a value yet."]
    for number, section in enumerate(chosen, 1):
        lines += ["", f"## {number}. {section.title}", "",
                  "| task | data file | hash | items | prompts | BERTScore encoder | decoding |", "|" + "---|" * 7]
        for task in section.tasks:
            data = section.files[task]
            prompts, encoder, decoding = describe_setup(section.majority(task))
            items = "not recorded" if data.n_items is None else str(data.n_items)
            lines.append(f"| {task} | {data.name or '-'} | {short_hash(data.dataset_hash)} | {items} | {prompts} | "
                         f"{encoder or '-'} | {decoding} |")
        reasons = section.reasons()
        notes = list(dict.fromkeys(reasons.values()))
        header = ["model"] + [f"{t} {m}" for t, m in section.columns]
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for model in section.models:
            row = [model]
            for task, metric in section.columns:
                o = section.cells.get((model, task, metric))
                cell = "-" if o is None else percent(o)
                if (model, task, metric) in reasons:
                    cell += f" [{notes.index(reasons[(model, task, metric)]) + 1}]"
                row.append(cell)
            lines.append("| " + " | ".join(row) + " |")
        if notes:
            lines.append("")
            for n, note in enumerate(notes, 1):
                where = ", ".join(f"{m} {t} {x}" for (m, t, x), r in reasons.items() if r == note)
                lines.append(f"[{n}] {where}: {note}.")
    return "\n".join(lines) + "\n"


FACTS = ("data file", "dataset hash", "items", "prompts", "prompt version", "bertscore encoder", "decoding")


def csv_rows(chosen: Sequence[Section]) -> tuple[list[str], list[list[str]]]:
    """One row per model and data set: the values, then each task's data and set-up as columns
    of their own (the model's own, not the section's majority), then the marks' reasons."""
    present = {c for s in chosen for c in s.columns}
    columns = [c for c in COLUMNS if c in present] + sorted(present - set(COLUMNS))
    tasks = list(dict.fromkeys(t for t, _ in columns))
    encoded = {t for s in chosen for (_, t, _), o in s.cells.items() if conditions(o.provenance).encoder != NOT_USED}
    facts = [(t, f) for t in tasks for f in FACTS if f != "bertscore encoder" or t in encoded]
    header = (["data set", "data source", "limit", "model"] + [f"{t} {m}" for t, m in columns]
              + [f"{t} {f}" for t, f in facts] + ["not comparable because"])
    rows = []
    for number, section in enumerate(chosen, 1):
        reasons = section.reasons()
        for model in section.models:
            limit = "all" if section.limit is None else str(section.limit)
            row = [str(number), section.data_source or "", limit, model]
            row += [percent(o) if (o := section.cells.get((model, t, m))) else "" for t, m in columns]
            for task, fact in facts:
                first = next((o for (m, t, _), o in section.cells.items() if m == model and t == task), None)
                row.append("" if first is None else _fact(first, fact))
            row.append("; ".join(f"{t} {m}: {reasons[(model, t, m)]}" for t, m in columns if (model, t, m) in reasons))
            rows.append(row)
    return header, rows


def _fact(o: Outcome, fact: str) -> str:
    c = conditions(o.provenance)
    values = {
        "data file": PurePath(str(o.provenance.get("dataset", ""))).name,
        "dataset hash": c.dataset_hash or "",
        "items": "" if c.n_items is None else str(c.n_items),
        "prompts": c.prompts or "",
        "prompt version": c.prompt_version or "",
        "bertscore encoder": "" if c.encoder in (None, NOT_USED) else str(c.encoder),
        "decoding": "" if c.decoding is None else describe_decoding(c.decoding),
    }
    return values[fact]


def write_models_table(reports_dir: Path, chosen: Sequence[Section] | None = None,
                       choice: str = "") -> tuple[Path, Path]:
    """reports/models_table.md and .csv: every data set, or the ``chosen`` ones (``choice`` says how)."""
    shown = models_table(reports_dir) if chosen is None else chosen
    md_path = atomic_write(reports_dir / "models_table.md", markdown(shown, choice))
    header, rows = csv_rows(shown)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return md_path, atomic_write(reports_dir / "models_table.csv", buffer.getvalue())
