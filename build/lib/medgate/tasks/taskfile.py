"""Tasks without Python: a task file (``<anything>.task.toml``) and a data file make a TaskSpec.

``load_task_file`` checks the whole file before any data is read: TOML syntax, the JSON Schema
(unknown keys, types, required keys, known metrics), then what a schema cannot say (placeholders
well formed, regular expressions that compile, labels without duplicates, format and sheet
consistent). The data is checked when it is read (``TaskSpec.load_samples``; ``check_task_file``
does both at once): every column the task file names is in the data, every cell used is text,
ids and prompts occur once, references fit the metrics, and there are more items than few-shot
examples. Each problem is one error naming the task file, the key and its line, and for the data
the row and column.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from medgate.core.errors import DataError, MissingDataFile
from medgate.core.types import BatchScores, Chat, MetricSpec, Sample, ScoringConfig
from medgate.tasks.base import TaskSpec, fewshot_chat
from medgate.tasks.files import check_text, check_unique, read_jsonl, read_table
from medgate.tasks.taskfile_metrics import Metric, build_metric
from medgate.tasks.taskfile_toml import KeyPath, TaskFileText, check_schema, read_task_toml

SUFFIX = ".task.toml"  # the naming rule: the plugin collects files whose names end so
FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".xlsx": "xlsx"}
CASE_SPECS = {"": lambda text: text, "upper": str.upper, "lower": str.lower}  # {column:upper}


def is_task_file(path: Path) -> bool:
    return path.name.endswith(SUFFIX) and len(path.name) > len(SUFFIX)


@dataclass(frozen=True)
class Template:
    """A prompt template: literal text and ``{column}`` / ``{column:upper}`` placeholders."""

    parts: tuple[tuple[str, str | None, str], ...]  # (literal, column or None, case spec)

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(column for _, column, _ in self.parts if column is not None))

    def render(self, values: Mapping[str, str]) -> str:
        return "".join(literal + (CASE_SPECS[spec](values[column]) if column is not None else "")
                       for literal, column, spec in self.parts)


def parse_template(source: TaskFileText, key: KeyPath, text: str) -> Template:
    """``text`` as a Template; a malformed placeholder is a ConfigError at ``key``."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:  # "Single '}' encountered in format string"
        raise source.error(key, f"{exc} (write {{{{ and }}}} for literal braces)") from None
    parts = []
    for literal, column, spec, conversion in parsed:
        if column is None:
            parts.append((literal, None, ""))
            continue
        if not column.strip() or column.isdigit():
            raise source.error(key, f"placeholder {{{column}}} names no column: write {{column name}} "
                                    "(and {{ }} for literal braces)")
        if conversion is not None:
            raise source.error(key, f"placeholder {{{column}!{conversion}}}: conversions are not supported")
        if spec not in CASE_SPECS:
            raise source.error(key, f"placeholder {{{column}:{spec}}}: after ':' only upper or lower may follow")
        parts.append((literal, column, spec))
    return Template(tuple(parts))


@dataclass(frozen=True)
class TaskFile:
    """A task file's checked content."""

    source: TaskFileText
    name: str
    title: str
    max_new_tokens: int
    data_path: Path  # the file named by data.file, resolved against the task file's folder
    format: str
    sheet: str | None
    id_column: str | None
    reference: str
    system: str
    user: Template
    answer: Template
    fewshot: int
    metrics: tuple[Metric, ...]

    @property
    def prompt_version(self) -> str:
        """Changes whenever what the model is shown changes (baselines and cached answers then differ)."""
        text = json.dumps([self.system, self.user.parts, self.answer.parts, self.fewshot])
        return f"{self.name}-file-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


def read_task_file(path: Path) -> TaskFile:
    """The task file checked as far as it can be without its data: ConfigError on any problem."""
    source, document = read_task_toml(path)
    check_schema(source, document)
    data, prompt = document["data"], document["prompt"]
    data_path, format_ = _data_file(source, data)
    user = parse_template(source, ("prompt", "user"), prompt["user"])
    if not user.columns:
        raise source.error(("prompt", "user"), "no {column} placeholder: every item would get the same prompt")
    answer = (parse_template(source, ("prompt", "answer"), prompt["answer"]) if "answer" in prompt
              else Template((("", data["reference"], ""),)))
    return TaskFile(
        source=source, name=document["name"], title=document.get("title", document["name"]),
        max_new_tokens=document["max_new_tokens"], data_path=data_path, format=format_, sheet=data.get("sheet"),
        id_column=data.get("id"), reference=data["reference"], system=prompt["system"], user=user, answer=answer,
        fewshot=prompt.get("fewshot", 0), metrics=_metrics(source, document["metrics"]),
    )


def _data_file(source: TaskFileText, data: Mapping[str, Any]) -> tuple[Path, str]:
    file = Path(data["file"]).expanduser()
    path = file if file.is_absolute() else Path(os.path.normpath(source.path.absolute().parent / file))
    suffix = path.suffix.lower()
    by_name = FORMATS.get(suffix)
    format_ = data.get("format", by_name)
    if format_ is None:
        raise source.error(("data", "file"), f"cannot tell the format from the extension {suffix or '(none)'!r}; "
                                             f"give format = \"jsonl\", \"csv\" or \"xlsx\"")
    if (by_name is not None and format_ != by_name) or (format_ == "xlsx" and suffix != ".xlsx"):
        raise source.error(("data", "format"), f"{format_!r}, but the file {path.name} is named as "
                                               f"{by_name or 'not xlsx'}; make the two agree")
    if "sheet" in data and format_ != "xlsx":
        raise source.error(("data", "sheet"), f"a sheet is read from an xlsx workbook only, and this data is "
                                              f"{format_}")
    return path, format_


def _metrics(source: TaskFileText, tables: Mapping[str, Mapping[str, Any]]) -> tuple[Metric, ...]:
    metrics = []
    for kind, params in tables.items():
        extract = None
        if "extract" in params:
            try:
                extract = re.compile(params["extract"])
            except re.error as exc:
                raise source.error(("metrics", kind, "extract"), f"not a valid regular expression ({exc})") from None
        if kind == "label_accuracy":
            _check_labels(source, params["labels"])
        metrics.append(build_metric(kind, params, extract))
    return tuple(metrics)


def _check_labels(source: TaskFileText, labels: Sequence[str]) -> None:
    seen: dict[str, int] = {}
    for index, label in enumerate(labels):
        if not label.strip():
            raise source.error(("metrics", "label_accuracy", "labels", index), "an empty label")
        if label.upper() in seen:
            raise source.error(("metrics", "label_accuracy", "labels"),
                               f"the label {label!r} twice (entries {seen[label.upper()] + 1} and {index + 1}; "
                               "case is ignored)")
        seen[label.upper()] = index


def load_task_file(path: Path) -> TaskSpec:
    """The task a task file declares, checked before any data is read (ConfigError otherwise).

    The spec's ``path`` is the data file the task file names (relative to the task file); its
    ``filename`` is that file's name, which a file in --data-dir overrides."""
    return task_spec(read_task_file(path))


def check_task_file(path: Path, data_dir: Path | None = None) -> TaskSpec:
    """``load_task_file``, then the data read and checked now (the file of the same name in
    ``data_dir`` when there is one): every problem of the task file or its data surfaces here."""
    checked = read_task_file(path)
    task = task_spec(checked)
    candidate = data_dir / task.filename if data_dir is not None else None
    data = candidate if candidate is not None and candidate.exists() else checked.data_path
    if not data.exists():
        raise MissingDataFile(data, f"data file not found (task file {checked.source.where(('data', 'file'))})")
    task.load_samples(data)
    return task


def task_spec(task: TaskFile) -> TaskSpec:
    specs: dict[str, MetricSpec] = {}
    for metric in task.metrics:
        specs.update(metric.specs)

    def build_prompt(sample: Sample, shots: Sequence[Sample]) -> Chat:
        return fewshot_chat(task.system, lambda s: task.user.render(s.fields["columns"]), sample, shots,
                            answer=lambda s: task.answer.render(s.fields["columns"]))

    return TaskSpec(
        name=task.name, title=task.title, filename=task.data_path.name, fewshot=task.fewshot,
        max_new_tokens=task.max_new_tokens, metrics=specs, load_samples=lambda path: load_samples(task, path),
        build_prompt=build_prompt, prompt_version=task.prompt_version,
        score_batch=lambda outputs, samples, scoring: score_batch(task, outputs, samples, scoring), path=task.data_path,
    )


def score_batch(task: TaskFile, outputs: Sequence[str], samples: Sequence[Sample],
                scoring: ScoringConfig) -> BatchScores:
    """Every metric of the task on every output, in the order the task file declares them."""
    per_item: list[dict[str, float]] = [{} for _ in outputs]
    notes: dict[str, str] = {}
    for metric in task.metrics:
        answers = [metric.answer(output) for output in outputs]
        if metric.score_all is not None:
            scores, extra = metric.score_all(answers, samples, scoring)
            notes.update(extra)
        else:
            assert metric.score is not None
            scores = [metric.score(answer, sample) for answer, sample in zip(answers, samples)]
        for item, new in zip(per_item, scores):
            item.update(new)
        notes.update(metric.notes)
    return BatchScores(per_item=per_item, notes=notes)


# --- the data ---------------------------------------------------------------------------------

def _name_task(exc: DataError, source: TaskFileText, key: KeyPath) -> None:
    exc.args = (f"{exc.args[0]} (task file {source.where(key)})", *exc.args[1:])


@contextmanager
def _for_task(source: TaskFileText, key: KeyPath) -> Iterator[None]:
    """A data error from the readers, with the task file and key that led to the file."""
    try:
        yield
    except MissingDataFile:
        raise
    except DataError as exc:
        _name_task(exc, source, key)
        raise


def _rows(task: TaskFile, path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        return read_jsonl(path) if task.format == "jsonl" else read_table(path, sheet=task.sheet)
    except MissingDataFile:
        raise
    except DataError as exc:
        on_sheet = task.sheet is not None and f"no sheet {task.sheet!r}" in exc.args[0]
        _name_task(exc, task.source, ("data", "sheet") if on_sheet else ("data", "file"))
        raise


def _columns_named(task: TaskFile) -> list[tuple[KeyPath, str]]:
    named: list[tuple[KeyPath, str]] = []
    if task.id_column is not None:
        named.append((("data", "id"), task.id_column))
    named.append((("data", "reference"), task.reference))
    named += [(("prompt", "user"), column) for column in task.user.columns]
    named += [(("prompt", "answer"), column) for column in task.answer.columns]
    return named


def _cell(value: Any) -> Any:
    """A number in a text column (a spreadsheet's 6 or 6.0, JSON's 6) is its text, "6"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def load_samples(task: TaskFile, path: Path) -> list[Sample]:
    """The task's items from ``path``: every named column present, every cell used a text (numbers
    read as text, surrounding whitespace stripped), ids and prompts unique, references fitting the
    metrics, more items than few-shot examples."""
    source = task.source
    rows = _rows(task, path)
    if not rows:
        raise DataError(path, f"no items (a header only, or blank lines) (task file {source.where(('data', 'file'))})")
    header = list(rows[0][1])
    named = _columns_named(task)
    for key, column in named:
        if column not in header:
            where = "the first line" if task.format == "jsonl" else "the header"
            raise DataError(source.where(key), f"no column {column!r} in {path.name} (found in {where}: "
                                               f"{', '.join(header)})")
    used = list(dict.fromkeys(column for key, column in named if key[0] == "prompt" or key == ("data", "reference")))
    unit = "row" if task.format == "xlsx" else "line"
    samples, seen = [], []
    for number, row in rows:
        item = f"{unit} {number}"
        values = {}
        for column in used:
            if column not in row:  # a JSON line without it
                raise DataError(path, f"missing field (task file {source.where(_key_of(named, column))})", item=item,
                                field=column)
            with _for_task(source, _key_of(named, column)):
                values[column] = check_text(path, _cell(row[column]), item, column).strip()
        gold = _golds(task, path, values[task.reference], item)
        if task.id_column is not None:
            with _for_task(source, ("data", "id")):
                item_id = check_text(path, _cell(row.get(task.id_column)), item, task.id_column).strip()
        else:
            item_id = f"{unit}-{number}"
        samples.append(Sample(id=item_id, fields={"columns": values, "gold": gold}, reference=values[task.reference]))
        seen.append((item, item_id, [values[c] for c in task.user.columns]))
    with _for_task(source, ("data", "id") if task.id_column else ("prompt", "user")):
        check_unique(path, seen, task.id_column or "item")
    if len(samples) <= task.fewshot:
        raise DataError(source.where(("prompt", "fewshot")),
                        f"{task.fewshot} few-shot examples need at least {task.fewshot + 1} items; {path.name} "
                        f"holds {len(samples)}")
    return samples


def _key_of(named: list[tuple[KeyPath, str]], column: str) -> KeyPath:
    return next(key for key, name in named if name == column)


def _golds(task: TaskFile, path: Path, reference: str, item: str) -> dict[str, Any]:
    """What each metric makes of the reference (checked labels, parsed codes), by metric kind."""
    gold = {}
    for metric in task.metrics:
        if metric.gold is None:
            continue
        key: KeyPath = ("metrics", metric.kind)
        with _for_task(task.source, key):
            try:
                gold[metric.kind] = metric.gold(reference, path, item, task.reference)
            except ValueError as exc:
                raise DataError(path, str(exc), item=item, field=task.reference) from None
    return gold


__all__ = ["SUFFIX", "TaskFile", "Template", "check_task_file", "is_task_file", "load_task_file", "read_task_file"]
