"""Reading a task's data file (JSON lines, a JSON document, CSV or an xlsx sheet) so that nothing
is scored that could not be validated. Every problem is a DataError naming the file, the item
(line, row or index) and the field.

What a hospital export can hold, and what happens to it here:
- only regular files are read, up to a size limit (a device such as /dev/zero is refused);
- gzip, zip, PDF, old .xls and other binary content under a dataset's name is refused by its
  magic bytes;
- UTF-8 with or without a byte order mark is read; UTF-16 with a byte order mark (Excel's
  "Unicode text") is read; other bytes are refused naming the line and the byte offset;
- JSON lines are read one at a time with a bound on the line length; CSV fields are bounded;
- duplicate JSON keys, duplicate or empty column names, a header row repeated inside the data
  (two files concatenated), a row with a different number of cells than the header (an unquoted
  comma), Excel error values (#N/A) and "nan"-like texts are refused.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import stat
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from medgate.core.errors import DataError

MAX_FILE_MB_ENV = "MEDGATE_MAX_DATA_MB"
DEFAULT_MAX_FILE_MB = 1024  # the largest real CLUE file is a few tens of MB
MAX_LINE_CHARS = 16 << 20  # a JSON line or a CSV field beyond this is refused, not held in memory

# Cell values that a spreadsheet or a dataframe export writes where a value was missing or broken.
EXCEL_ERRORS = ("#N/A", "#NAME?", "#VALUE!", "#REF!", "#DIV/0!", "#NUM!", "#NULL!", "#SPILL!", "#CALC!", "#GETTING_DATA")
MISSING_TEXTS = ("nan", "null", "n/a", "<na>", "nat", "undefined")  # not "None": a real answer may be that word

_MAGIC = (  # prefix -> what it is; xlsx files are zip archives and are expected where a sheet is read
    (b"\x1f\x8b", "gzip-compressed"),
    (b"BZh", "bzip2-compressed"),
    (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"PK\x03\x04", "a zip archive (or an xlsx workbook)"),
    (b"%PDF", "a PDF document"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Word file (.xls/.doc)"),
    (b"SQLite format 3", "an SQLite database"),
    (b"PAR1", "a Parquet file"),
)


def max_file_bytes() -> int:
    configured = os.environ.get(MAX_FILE_MB_ENV, "")
    return (int(configured) if configured.isdigit() and int(configured) > 0 else DEFAULT_MAX_FILE_MB) << 20


def check_file(path: Path, *, zip_expected: bool = False) -> bytes:
    """Refuse what is not a readable regular file of sane size and text (or xlsx) content;
    return its first bytes."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as exc:
        raise DataError(path, f"cannot read file: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(path, "cannot read file: Is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise DataError(path, "not a regular file (a device, pipe or socket); give the dataset file itself")
    if info.st_size > max_file_bytes():
        raise DataError(path, f"file of {info.st_size >> 20} MiB is larger than the limit of {max_file_bytes() >> 20} "
                              f"MiB (raise it with {MAX_FILE_MB_ENV} if the file is right)")
    try:
        with path.open("rb") as handle:
            head = handle.read(8192)
    except OSError as exc:
        raise DataError(path, f"cannot read file: {exc.strerror}") from None
    if not head:
        raise DataError(path, "empty file")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            if zip_expected and magic == b"PK\x03\x04":
                return head
            raise DataError(path, f"the file is {what}, not the text this task reads; unpack or export it first")
    if zip_expected:
        raise DataError(path, "not an xlsx workbook (an xlsx file is a zip archive; this one is not)")
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(path, "binary content (NUL bytes), or UTF-16 text without a byte order mark; "
                              "save the file as UTF-8")
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise DataError(path, "UTF-32 text; save the file as UTF-8")
    return head


def _encoding(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the BOM says which byte order
    return "utf-8-sig"  # UTF-8, with or without a byte order mark


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line with its newline) of a text file, decoded as it is read.

    Bytes that are not UTF-8 are refused naming the line and the byte offset. A line longer than
    MAX_LINE_CHARS is refused without reading it whole."""
    head = check_file(path)
    if _encoding(head) == "utf-16":
        with path.open(encoding="utf-16", newline="") as handle:
            number = 0
            while line := handle.readline(MAX_LINE_CHARS + 1):
                number += 1
                _check_length(path, line, number)
                yield number, line
        return
    offset = 0
    with path.open("rb") as handle:
        number = 0
        while raw := handle.readline(MAX_LINE_CHARS + 1):
            number += 1
            _check_length(path, raw, number)
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw, offset = raw[3:], 3
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(path, f"not UTF-8 text: byte 0x{raw[exc.start]:02X} at byte offset {offset + exc.start} "
                                      "(Windows-1252 or Latin-1?); save the file as UTF-8", item=f"line {number}") from None
            offset += len(raw)
            yield number, line


def _check_length(path: Path, line: str | bytes, number: int) -> None:
    if len(line) > MAX_LINE_CHARS:
        raise DataError(path, f"line longer than {MAX_LINE_CHARS >> 20} Mi characters; refused", item=f"line {number}")


def read_text(path: Path) -> str:
    """A whole (size-checked) text file, decoded as text_lines does."""
    return "".join(line for _, line in text_lines(path))


def _unique_keys(path: Path, item: str | None = None) -> Any:
    """json's object_pairs_hook: a key twice in one object is refused (the last would win silently)."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise DataError(path, f"the key {key!r} occurs twice in one JSON object (two files merged?)", item=item)
            out[key] = value
        return out

    return hook


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a JSON-lines file with their 1-based line numbers; blank lines are skipped."""
    rows = []
    for number, line in text_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_unique_keys(path, f"line {number}"))
        except json.JSONDecodeError as exc:
            raise DataError(path, f"not valid JSON ({exc.msg} at column {exc.colno})", item=f"line {number}") from None
        if not isinstance(row, dict):
            raise DataError(path, f"expected a JSON object, got {_kind(row)}", item=f"line {number}")
        rows.append((number, row))
    return rows


def read_json(path: Path) -> Any:
    text = read_text(path)
    try:
        return json.loads(text, object_pairs_hook=_unique_keys(path))
    except json.JSONDecodeError as exc:
        hint = " (two JSON documents concatenated?)" if exc.msg == "Extra data" else ""
        raise DataError(path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}){hint}") from None


def read_json_list(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Items of a file holding a JSON list of objects, with their 0-based indices."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON list of items, got {_kind(data)}")
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(path, f"expected a JSON object, got {_kind(row)}", item=index)
    return list(enumerate(data))


def read_table(path: Path, *, sheet: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a CSV file or an xlsx sheet as dicts keyed by the header row, with the 1-based
    line (row) numbers where they start, as an editor or a spreadsheet shows them. Blank rows
    are skipped."""
    if path.suffix.lower() == ".xlsx":
        return _read_xlsx(path, sheet)
    csv.field_size_limit(MAX_LINE_CHARS)
    lines = (line for _, line in text_lines(path))
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(path, "empty file") from None
    except csv.Error as exc:
        raise DataError(path, f"not valid CSV ({exc})", item="line 1") from None
    names = _header(path, header)
    rows = []
    start = reader.line_num + 1  # a quoted cell may span lines: a record is named by its first line
    try:
        for cells in reader:
            first, start = start, reader.line_num + 1
            item = f"line {first}"
            if not any(cell.strip() for cell in cells):
                continue
            if _is_header(cells, names):
                raise DataError(path, "the header row again inside the data (two files concatenated?)", item=item)
            if len(cells) != len(names):
                raise DataError(path, f"{len(cells)} cells where the header has {len(names)} (an unquoted comma, an "
                                      "unclosed quote or a missing cell?)", item=item)
            _check_unnamed(path, names, cells, item)
            rows.append((first, dict(zip(names, cells))))
    except csv.Error as exc:
        raise DataError(path, f"not valid CSV ({exc})", item=f"line {start}") from None
    return rows


def _is_header(cells: Sequence[Any], names: list[str]) -> bool:
    """The header again (a byte order mark in front of it: two exported files joined with cat)."""
    return [("" if c is None else str(c)).strip().lstrip("\ufeff") for c in cells][: len(names)] == names


def _check_unnamed(path: Path, names: list[str], cells: Sequence[Any], item: str) -> None:
    """A value under a column without a name would be dropped silently: refuse it."""
    for position, (name, cell) in enumerate(zip(names, cells), start=1):
        if not name and cell is not None and str(cell).strip():
            raise DataError(path, f"a value ({str(cell).strip()[:40]!r}) in column {position}, which has no name in the "
                                  "header row", item=item)


def _header(path: Path, cells: Sequence[Any], *, row: str = "line 1") -> list[str]:
    """Column names: none may be used twice (which one would be read?)."""
    names = [str(c).strip().lstrip("\ufeff") if c is not None else "" for c in cells]
    if len(names) == 1 and any(sep in names[0] for sep in (";", "\t", "|")):
        sep = next(s for s in (";", "\t", "|") if s in names[0])
        raise DataError(path, f"one column named {names[0][:60]!r}: the file is separated by {sep!r}, not by commas; "
                              "export it as comma-separated CSV", item=row)
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name and name in seen:
            raise DataError(path, f"column {name!r} appears twice (columns {seen[name]} and {position}): which one holds "
                                  "the data is ambiguous", item=row)
        seen.setdefault(name, position)
    return names


def _read_xlsx(path: Path, sheet: str | None) -> list[tuple[int, dict[str, Any]]]:
    import zipfile

    from openpyxl import load_workbook

    check_file(path, zip_expected=True)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, TypeError) as exc:
        raise DataError(path, f"not a readable xlsx workbook ({type(exc).__name__})") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise DataError(path, f"no sheet {sheet!r} (sheets: {', '.join(book.sheetnames)})")
        rows_iter = (book[sheet] if sheet else book.active).iter_rows(values_only=True)
        header = next(rows_iter, None)
        if header is None:
            raise DataError(path, f"sheet {sheet!r} is empty")
        names = _header(path, header, row="row 1")
        rows = []
        empty_cells: list[tuple[int, int]] = []  # (row, column) of cells without a value: formulas never computed?
        for number, values in enumerate(rows_iter, start=2):
            empty_cells += [(number, column) for column, v in enumerate(values) if v is None]
            if not any(v is not None and str(v).strip() for v in values):
                continue
            if _is_header(values, names):
                raise DataError(path, "the header row again inside the data (two sheets pasted together?)",
                                item=f"row {number}")
            extra = [v for v in values[len(names):] if v is not None and str(v).strip()]
            if extra:
                raise DataError(path, f"a value beyond the last named column ({extra[0]!r})", item=f"row {number}")
            _check_unnamed(path, names, values, f"row {number}")
            rows.append((number, {n: ("" if v is None else v) for n, v in zip(names, values)}))
    finally:
        book.close()
    if empty_cells:
        _refuse_unstored_formulas(path, sheet, names, empty_cells)
    return rows


def _refuse_unstored_formulas(path: Path, sheet: str | None, names: list[str], cells: list[tuple[int, int]]) -> None:
    """A formula cell holds its value only once a spreadsheet program has computed and saved it; a
    file written by a script (openpyxl, pandas) has none, and ``data_only`` reads it as empty. Such a
    cell would read as "empty value" (or its row as blank, skipped): name it for what it is."""
    from openpyxl import load_workbook

    wanted = set(cells)
    book = load_workbook(path, read_only=True, data_only=False)
    try:
        for number, values in enumerate((book[sheet] if sheet else book.active).iter_rows(values_only=True), start=1):
            for column, value in enumerate(values):
                if (number, column) in wanted and _is_formula(value):
                    name = names[column] if column < len(names) and names[column] else f"column {column + 1}"
                    raise DataError(path, f"a formula ({str(value)[:60]}) whose value was never stored: the file was "
                                          "written by a program, not saved by a spreadsheet; open it in Excel or "
                                          "LibreOffice and save it, or export the values (Paste Special > Values)",
                                    item=f"row {number}", field=name)
    finally:
        book.close()


def _is_formula(value: Any) -> bool:
    # openpyxl gives a plain formula as its text ("=A2&B2") and an array formula as an object
    return (isinstance(value, str) and value.startswith("=")) or type(value).__name__ in ("ArrayFormula",
                                                                                          "DataTableFormula")


def require_columns(path: Path, rows: list[tuple[int, dict[str, Any]]], columns: Sequence[str]) -> None:
    """A table without an expected column is one error, not one per row."""
    present = set(rows[0][1]) if rows else set()
    missing = [c for c in columns if c not in present]
    if rows and missing:
        raise DataError(path, f"missing column(s) {', '.join(map(repr, missing))} (found: {', '.join(sorted(present))})")


def require_text(path: Path, row: Mapping[str, Any], field: str, item: object) -> str:
    """A non-empty text field of a row (not an Excel error value nor a "nan"), as read."""
    if field not in row:
        raise DataError(path, "missing field", item=item, field=field)
    return check_text(path, row[field], item, field)


def check_text(path: Path, value: Any, item: object, field: str) -> str:
    """``value`` as a text that a prompt or a reference may use, else a DataError saying why."""
    if value is None or value == "":
        raise DataError(path, "empty value", item=item, field=field)
    if not isinstance(value, str):
        raise DataError(path, f"expected text, got {_kind(value)} {value!r}", item=item, field=field)
    stripped = value.strip()
    if not stripped:
        raise DataError(path, "empty value", item=item, field=field)
    if stripped.upper() in EXCEL_ERRORS:
        raise DataError(path, f"the Excel error value {stripped} where text belongs (a broken formula or lookup)",
                        item=item, field=field)
    if stripped.lower() in MISSING_TEXTS:
        raise DataError(path, f"{stripped!r}, a missing value written as text", item=item, field=field)
    return value


def check_unique(path: Path, items: Sequence[tuple[str, str, Any]], what: str) -> None:
    """(where, id, content) of every item: an id twice, or the same content under two ids, is
    refused (a file concatenated twice would be scored twice, and few-shot examples scored as
    test items)."""
    by_id: dict[str, str] = {}
    by_content: dict[str, tuple[str, str]] = {}
    for where, item_id, content in items:
        if item_id in by_id:
            raise DataError(path, f"{what} {item_id!r} occurs twice ({by_id[item_id]} and {where}); every item must be "
                                  "scored once", item=where)
        by_id[item_id] = where
        key = json.dumps(content, sort_keys=True, default=str)
        if key in by_content:
            first_where, first_id = by_content[key]
            raise DataError(path, f"the same item as {first_where} ({what} {first_id!r}) under another {what} "
                                  f"{item_id!r}; every item must be scored once", item=where)
        by_content[key] = (where, item_id)


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "text", dict: "an object", list: "a list",
            type(None): "null"}.get(type(value), type(value).__name__)
