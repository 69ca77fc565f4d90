"""Reading a task's data file: JSON lines, a JSON document, CSV or an xlsx sheet, with errors
that name the file, the item and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from medgate.core.errors import DataError


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
