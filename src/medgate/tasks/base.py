"""What every task is: a loader, a prompt builder and a scorer, plus its protocol constants."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from medgate.errors import DataError
from medgate.types import Chat, Sample

FEWSHOT_SEED = 1  # PROTOCOL.md: random.seed(1); random.shuffle(items)


@dataclass(frozen=True)
class MetricSpec:
    """A metric's range and direction; thresholds are floors when higher is better, else ceilings."""

    name: str
    description: str
    bounds: tuple[float, float] = (0.0, 1.0)
    higher_is_better: bool = True
    binary: bool = False  # per-item 0/1 (accuracies): compared by exact McNemar, else paired bootstrap


@dataclass(frozen=True)
class ScoringConfig:
    """Run-wide scoring choices (the BERTScore encoder), and where scores are cached (None:
    nowhere; the model session sets it to the generation cache's file)."""

    bertscore_encoder: str = "minilm"
    bertscore_layers: int | None = None
    cache_path: Path | None = None


@dataclass
class BatchScores:
    """Per-item scores of a whole task, metrics that could not be computed (with the reason),
    and notes for the report (e.g. the encoder used)."""

    per_item: list[dict[str, float]]
    not_computed: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PromptContext:
    """What prompt building may know of the model: its tokenizer and context length."""

    count_tokens: Callable[[str], int]
    truncate: Callable[[str, int], str]  # keep the first n tokens of a text
    context_len: int


@dataclass(frozen=True)
class TaskSpec:
    """One clinical task. Every callable is pure and testable without a model.

    ``score_sample`` scores one output; tasks whose metrics work on batches (BERTScore) give
    ``score_batch`` instead. ``prepare`` turns loaded samples into the items to prompt when that
    depends on the model's tokenizer (LongHealth packs documents to the context budget).
    """

    name: str
    title: str
    filename: str  # the user's real file, under its original name, in the data directory
    fewshot: int
    max_new_tokens: int
    metrics: Mapping[str, MetricSpec]
    load_samples: Callable[[Path], list[Sample]]
    build_prompt: Callable[[Sample, Sequence[Sample]], Chat]
    prompt_version: str
    score_sample: Callable[[str, Sample], dict[str, float]] | None = None
    score_batch: Callable[[Sequence[str], Sequence[Sample], ScoringConfig], BatchScores] | None = None
    prepare: Callable[[list[Sample], PromptContext], list[Sample]] | None = None
    credentialed: bool = True  # the real data may hold patient text (PhysioNet DUA)
    alt_filenames: tuple[str, ...] = ()  # other accepted names, tried in order after ``filename``

    @property
    def metric_names(self) -> list[str]:
        return list(self.metrics)

    def score_all(self, outputs: Sequence[str], samples: Sequence[Sample], scoring: ScoringConfig) -> BatchScores:
        if self.score_batch is not None:
            return self.score_batch(outputs, samples, scoring)
        assert self.score_sample is not None, f"{self.name}: a task needs score_sample or score_batch"
        return BatchScores([self.score_sample(o, s) for o, s in zip(outputs, samples)])

    def aggregate(self, per_item: Sequence[Mapping[str, float]]) -> dict[str, float | None]:
        """Mean of every metric over items (each item once: the reference counted item 0 twice)."""
        out: dict[str, float | None] = {}
        for metric in self.metrics:
            values = [scores[metric] for scores in per_item if metric in scores]
            out[metric] = sum(values) / len(values) if values else None
        return out


def fewshot_chat(system: str, user_text: Callable[[Sample], str], sample: Sample, shots: Sequence[Sample],
                 answer: Callable[[Sample], str] = lambda shot: str(shot.reference)) -> Chat:
    """The protocol's chat: one system message, each shot as a user/assistant pair, then the item."""
    chat = [{"role": "system", "content": system}]
    for shot in shots:
        chat += [{"role": "user", "content": user_text(shot)}, {"role": "assistant", "content": answer(shot)}]
    chat.append({"role": "user", "content": user_text(sample)})
    return chat


def split_fewshot(samples: Sequence[Sample], k: int, seed: int = FEWSHOT_SEED) -> tuple[list[Sample], list[Sample]]:
    """Shuffle as the reference does and take the first k items as few-shot examples."""
    items = list(samples)
    random.Random(seed).shuffle(items)
    return items[:k], items[k:]


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a JSON-lines file with their 1-based line numbers; blank lines are skipped."""
    rows = []
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"not valid JSON ({exc.msg} at column {exc.colno})", item=f"line {number}") from None
            if not isinstance(row, dict):
                raise DataError(path, f"expected a JSON object, got {type(row).__name__}", item=f"line {number}")
            rows.append((number, row))
    return rows


def require_text(path: Path, row: Mapping[str, Any], field: str, item: object, *, allow_empty: bool = False) -> str:
    """A string field of a row, or a DataError naming file, item and field."""
    if field not in row:
        raise DataError(path, "missing field", item=item, field=field)
    value = row[field]
    if not isinstance(value, str):
        raise DataError(path, f"expected text, got {type(value).__name__}", item=item, field=field)
    if not allow_empty and not value.strip():
        raise DataError(path, "empty value", item=item, field=field)
    return value


def read_json(path: Path) -> Any:
    with _open_text(path) as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


def read_json_list(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Items of a file holding a JSON list of objects, with their 0-based indices."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON list of items, got {type(data).__name__}")
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(path, f"expected a JSON object, got {type(row).__name__}", item=index)
    return list(enumerate(data))


def read_table(path: Path, *, sheet: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a CSV file or an xlsx sheet as dicts keyed by the header row, with their 1-based
    line (row) numbers as a spreadsheet shows them."""
    if path.suffix.lower() == ".xlsx":
        return _read_xlsx(path, sheet)
    import csv

    with _open_text_sig(path) as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(path, "empty file") from None
        except csv.Error as exc:
            raise DataError(path, f"not valid CSV ({exc})", item="line 1") from None
        rows = []
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append((reader.line_num, dict(zip([h.strip() for h in header], row))))
        except csv.Error as exc:
            raise DataError(path, f"not valid CSV ({exc})", item=f"line {reader.line_num}") from None
    return rows


def _read_xlsx(path: Path, sheet: str | None) -> list[tuple[int, dict[str, Any]]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise DataError(path, f"not a readable xlsx workbook ({type(exc).__name__})") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise DataError(path, f"no sheet {sheet!r} (sheets: {', '.join(book.sheetnames)})")
        rows_iter = (book[sheet] if sheet else book.active).iter_rows(values_only=True)
        header = next(rows_iter, None)
        if header is None:
            raise DataError(path, f"sheet {sheet!r} is empty")
        names = [str(h).strip() if h is not None else "" for h in header]
        rows = []
        for number, values in enumerate(rows_iter, start=2):
            if any(v is not None and str(v).strip() for v in values):
                rows.append((number, {n: ("" if v is None else v) for n, v in zip(names, values)}))
        return rows
    finally:
        book.close()


def require_columns(path: Path, rows: list[tuple[int, dict[str, Any]]], columns: Sequence[str]) -> None:
    """A table without an expected column is one error, not one per row."""
    present = set(rows[0][1]) if rows else set()
    missing = [c for c in columns if c not in present]
    if rows and missing:
        raise DataError(path, f"missing column(s) {', '.join(map(repr, missing))} (found: {', '.join(sorted(present))})")


def _open_text_sig(path: Path) -> Any:
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as exc:
        raise DataError(path, f"cannot read file: {exc.strerror}") from None


def _open_text(path: Path) -> Any:
    try:
        return path.open(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as exc:
        raise DataError(path, f"cannot read file: {exc.strerror}") from None
