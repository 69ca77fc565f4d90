"""A corpus of bad input, each case a whole pytest session as a user runs it (fake engine).

What a hostile hospital data engineer hands the gate: Excel exports, Windows encodings,
concatenated and duplicated files, wrong folders, broken models.toml files and options. Every
case asserts the exit code, that no traceback (nor INTERNALERROR) is shown, and the words of
the one-line message: the file, the item (line, row, item, patient and question) and the field.

The table ``CASES`` holds one record per case (id, task, how to build the bad input, kind,
expected words, arguments); ``test_bad_input`` runs each (``-k <id>`` selects one):
- "data" cases break one task's file: the run exits 1, every metric test of that task errors
  with the message, summary.md is written, says FAILED and lists the message;
- "usage" cases are configuration problems: exit 4 before anything loads, one ``ERROR:`` line;
- "runs" cases are odd but valid files (BOMs, UTF-16, CRLF, blank lines): the task is read and
  scored as the shipped file is (the same number of items and the same value).

Each case starts from the shipped fixture of its task (``FIXTURES``) and breaks it, bytes-level
for encodings. Expected words may name ``<file>`` (the task's file in the data folder),
``<data>``, ``<tmp>``, ``<reports>``, ``<models>`` and what the builder computed (``<offset>``).
Cases that need their own setup (a FIFO, a device, a corrupt generation cache, a known gap, a
partial data folder) are separate tests at the end.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
import re
import shutil
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from medgate.tasks import TASKS
from tests.conftest import FIXTURES, REPO, outcomes

# ---------------------------------------------------------------------------------------------
# The run: a fake model, gated on one metric per task with a floor nothing can miss, so that a
# valid file passes (exit 0) and a broken one errors (exit 1).

REPLY = "The correct answer is A: first. ICD-10 Codes: I10, J18.9. ENTAILMENT"
MODELS = f"""\
default = "fake"

[models.fake]
path = "."
backend = "fake"
fake_reply = "{REPLY}"

[models.fake.thresholds]
mednli = {{ accuracy = 0.0 }}
meqsum = {{ rouge1 = 0.0 }}
problem_summary = {{ rouge1 = 0.0 }}
medisumqa = {{ rouge1 = 0.0 }}
medisumcode = {{ valid_ratio = 0.0 }}
longhealth = {{ accuracy_task1 = 0.0 }}
"""
GATED = {"mednli": "accuracy", "meqsum": "rouge1", "problem_summary": "rouge1", "medisumqa": "rouge1",
         "medisumcode": "valid_ratio", "longhealth": "accuracy_task1"}

MEDNLI, MEQSUM, PROBSUM = "mli_test_v1.jsonl", "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx", "BioNLP2023-1A-Test.csv"
QA, CODE, LONG = "MeDiSumQA.json", "MeDiSumCode.json", "benchmark_v5.json"
FILE_OF = {"mednli": MEDNLI, "meqsum": MEQSUM, "problem_summary": PROBSUM, "medisumqa": QA, "medisumcode": CODE,
           "longhealth": LONG}

NO_TRACE = ("Traceback", "INTERNALERROR", "raise DataError", "raise ConfigError")


@dataclass
class Ctx:
    """What a case builds: the data folder (the task's file goes here), the models file, extra
    environment and arguments, and names to put into the expected words (``<name>``)."""

    tmp: Path
    data: Path
    models: Path
    reports: Path
    env: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.data / name

    def write(self, name: str, content: str | bytes) -> Path:
        target = self.path(name)
        if isinstance(content, str):
            content = content.encode("utf-8")
        target.write_bytes(content)
        return target


@dataclass
class Case:
    id: str
    task: str  # the test module to run (tests_medical/test_<task>.py) and whose file is broken
    build: Callable[[Ctx], Any]
    kind: str  # "data" (exit 1, the task's tests error), "usage" (exit 4), "runs" (exit 0, scored)
    words: tuple[str, ...] = ()  # fragments of the message; <file>, <data>, <tmp>, <models> and ctx.names
    args: tuple[str, ...] = ()  # extra command-line arguments (same placeholders)
    data_dir: bool = True  # pass --data-dir <data>
    model: bool = True  # pass --model fake

    def __post_init__(self) -> None:
        assert self.kind in ("data", "usage", "runs"), self.kind
        assert self.kind == "runs" or self.words, f"{self.id}: a bad input must name what is wrong"

    @property
    def param(self) -> Any:
        return pytest.param(self, id=self.id)


# ---------------------------------------------------------------------------------------------
# Builders: start from the shipped fixture and break it.

def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def pristine(name: str) -> Callable[[Ctx], Any]:
    return lambda ctx: ctx.write(name, raw(name))


def put(name: str, content: Callable[[], str | bytes] | str | bytes) -> Callable[[Ctx], Any]:
    return lambda ctx: ctx.write(name, content() if callable(content) else content)


def mednli_rows() -> list[dict]:
    return [json.loads(line) for line in text(MEDNLI).splitlines()]


def jsonl(rows: list[Any]) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def mednli_edit(edit: Callable[[list], Any]) -> Callable[[Ctx], Any]:
    """MedNLI with its rows (a list of dicts, 0-based: row i is line i + 1) edited in place."""
    def build(ctx: Ctx) -> None:
        rows = mednli_rows()
        edit(rows)
        ctx.write(MEDNLI, jsonl(rows))
    return build


def setitem(container: Any, key: Any, value: Any) -> None:
    container[key] = value


def json_edit(name: str, edit: Callable[[Any], Any]) -> Callable[[Ctx], Any]:
    """A JSON document (MeDiSumQA, MeDiSumCode, LongHealth) parsed, edited in place, written back."""
    def build(ctx: Ctx) -> None:
        data = json.loads(text(name))
        edit(data)
        ctx.write(name, json.dumps(data, indent=1))
    return build


def json_replace(name: str, replace: Callable[[Any], Any]) -> Callable[[Ctx], Any]:
    """A JSON document replaced by what ``replace`` makes of it."""
    return lambda ctx: ctx.write(name, json.dumps(replace(json.loads(text(name))), indent=1))


def csv_rows() -> list[list[str]]:
    return list(csv.reader(io.StringIO(text(PROBSUM), newline="")))


def csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def csv_edit(edit: Callable[[list[list[str]]], Any]) -> Callable[[Ctx], Any]:
    """Problem Summary's CSV as a list of rows (row 0 the header, row i on line i + 1)."""
    def build(ctx: Ctx) -> None:
        rows = csv_rows()
        edit(rows)
        ctx.write(PROBSUM, csv_text(rows))
    return build


def xlsx_edit(edit: Callable[[Any], Any]) -> Callable[[Ctx], Any]:
    """MeQSum's workbook, edited with openpyxl (``edit`` gets the workbook), saved."""
    def build(ctx: Ctx) -> None:
        book = load_workbook(FIXTURES / MEQSUM)
        edit(book)
        book.save(ctx.path(MEQSUM))
    return build


def zipped(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return out.getvalue()


def big_mednli(ctx: Ctx) -> None:
    """A valid file of 2 MiB (blank lines) under MEDGATE_MAX_DATA_MB=1."""
    ctx.env["MEDGATE_MAX_DATA_MB"] = "1"
    ctx.write(MEDNLI, raw(MEDNLI) + b"\n" * (2 << 20))


def cp1252_mednli(ctx: Ctx) -> None:
    """Line 5 gets "Café" in Windows-1252: the message names line 5 and the byte's offset."""
    lines = text(MEDNLI).splitlines(keepends=True)
    lines[4] = lines[4].replace('"sentence2": "', '"sentence2": "Caf\u00e9 ', 1)
    data = b"".join(line.encode("cp1252") for line in lines)
    offset = sum(len(line.encode()) for line in lines[:4]) + lines[4].encode("cp1252").index(b"\xe9")
    ctx.names["offset"] = str(offset)
    ctx.write(MEDNLI, data)


def cp1252_csv(ctx: Ctx) -> None:
    """A degree sign (0xB0 in Windows-1252) on line 4 of the CSV: line and byte offset."""
    lines = text(PROBSUM).splitlines(keepends=True)
    assert "T 37.2" in lines[2]
    lines[3] = lines[3].replace("Glucose 182", "Glucose 182, T 37\u00b0C", 1)
    assert "\u00b0" in lines[3]
    data = b"".join(line.encode("cp1252") for line in lines)
    ctx.names["offset"] = str(sum(len(line.encode()) for line in lines[:3]) + lines[3].encode("cp1252").index(b"\xb0"))
    ctx.write(PROBSUM, data)


def cp1252_json(name: str, needle: str) -> Callable[[Ctx], Any]:
    """``needle`` + "é" in Windows-1252 at its first occurrence: the line and the byte offset."""
    def build(ctx: Ctx) -> None:
        body = text(name)
        at = body.index(needle) + len(needle)
        data = body[:at].encode() + "\u00e9".encode("cp1252") + body[at:].encode()
        ctx.names["line"] = str(body[:at].count("\n") + 1)
        ctx.names["offset"] = str(len(body[:at].encode()))
        ctx.write(name, data)
    return build


def in_utf16(name: str, encoding: str = "utf-16", transform: Callable[[str], str] = lambda s: s) -> Callable[[Ctx], Any]:
    """Excel's "Unicode text": UTF-16 with a byte order mark ("utf-16" writes one)."""
    def build(ctx: Ctx) -> None:
        body = transform(text(name))
        data = body.encode(encoding)
        if encoding in ("utf-16-le", "utf-16-be"):  # an explicit BOM for the explicit byte orders
            data = (codecs.BOM_UTF16_LE if encoding.endswith("le") else codecs.BOM_UTF16_BE) + data
        ctx.write(name, data)
    return build


def with_accent(body: str) -> str:
    """A non-ASCII character in the first text, so that a wrong decoding could not pass unseen."""
    return body.replace("Patient", "Pati\u00e9nt", 1).replace("DISCHARGE", "DISCHARG\u00c9", 1)


def longhealth(edit: Callable[[dict], Any]) -> Callable[[Ctx], Any]:
    return json_edit(LONG, edit)


def longhealth_replace(replace: Callable[[dict], Any]) -> Callable[[Ctx], Any]:
    return json_replace(LONG, replace)


def question(data: dict, pid: str = "patient_02", index: int = 1) -> dict:
    return data[pid]["questions"][index]


def models_toml(body: str | bytes) -> Callable[[Ctx], Any]:
    """Replace the run's models file (the data folder keeps the pristine MedNLI file)."""
    def build(ctx: Ctx) -> None:
        ctx.write(MEDNLI, raw(MEDNLI))
        ctx.models.write_bytes(body.encode("utf-8") if isinstance(body, str) else body)
    return build


# ---------------------------------------------------------------------------------------------
# The cases. A data case names the file (<file>: the task's file in the data folder), the item
# and the field; a usage case names the option or the models.toml key.

D, U, R = "data", "usage", "runs"

MEDNLI_CASES = [
    # duplicated data
    Case("mednli-file-concatenated-twice", "mednli", put(MEDNLI, lambda: text(MEDNLI) * 2), D,
         ("<file>, line 37: pairID 'synth-mednli-001' occurs twice (line 1 and line 37)", "scored once")),
    Case("mednli-same-item-under-another-id", "mednli",
         mednli_edit(lambda rows: rows.append({**rows[3], "pairID": "copy-of-4"})), D,
         ("<file>, line 37: the same item as line 4 (pairID 'synth-mednli-004') under another pairID 'copy-of-4'",)),
    Case("mednli-duplicate-json-key-in-a-line", "mednli",
         mednli_edit(lambda rows: setitem(rows, 5, json.dumps(rows[5])[:-1] + ', "gold_label": "neutral"}')), D,
         ("<file>, line 6", "the key 'gold_label' occurs twice in one JSON object")),
    # wrong gold values
    Case("mednli-gold-label-outside-the-set", "mednli", mednli_edit(lambda rows: rows[4].update(gold_label="maybe")), D,
         ("<file>, line 5, field 'gold_label': 'maybe' is not one of entailment, neutral, contradiction",)),
    Case("mednli-gold-label-nan-text", "mednli", mednli_edit(lambda rows: rows[4].update(gold_label="nan")), D,
         ("<file>, line 5, field 'gold_label': 'nan', a missing value written as text",)),
    Case("mednli-gold-label-json-NaN", "mednli",
         mednli_edit(lambda rows: setitem(rows, 4, json.dumps({**rows[4], "gold_label": float("nan")}))), D,
         ("<file>, line 5, field 'gold_label': expected text, got a number nan",)),
    Case("mednli-excel-error-as-input", "mednli", mednli_edit(lambda rows: rows[7].update(sentence1="#N/A")), D,
         ("<file>, line 8, field 'sentence1': the Excel error value #N/A where text belongs",)),
    Case("mednli-hypothesis-is-a-number", "mednli", mednli_edit(lambda rows: rows[1].update(sentence2=42)), D,
         ("<file>, line 2, field 'sentence2': expected text, got a number 42",)),
    Case("mednli-missing-hypothesis", "mednli", mednli_edit(lambda rows: rows[6].pop("sentence2")), D,
         ("<file>, line 7, field 'sentence2': missing field",)),
    Case("mednli-pairid-is-a-boolean", "mednli", mednli_edit(lambda rows: rows[2].update(pairID=True)), D,
         ("<file>, line 3, field 'pairID': expected a text or number id, got True",)),
    # JSON lines that are not objects, or not JSON
    Case("mednli-line-is-a-list", "mednli", mednli_edit(lambda rows: setitem(rows, 9, '["a", "b"]')), D,
         ("<file>, line 10: expected a JSON object, got a list",)),
    Case("mednli-line-cut-off", "mednli", mednli_edit(lambda rows: setitem(rows, 1, json.dumps(rows[1])[:40])), D,
         ("<file>, line 2: not valid JSON (",)),
    Case("mednli-only-blank-lines", "mednli", put(MEDNLI, "\n  \n\r\n\n"), D, ("<file>: no items",)),
    Case("mednli-snli-dash-label", "mednli", mednli_edit(lambda rows: rows[11].update(gold_label="-")), D,
         ("<file>, line 12, field 'gold_label': '-' is not one of entailment, neutral, contradiction",)),
    Case("mednli-two-bom-files-concatenated", "mednli",
         put(MEDNLI, lambda: codecs.BOM_UTF8 + raw(MEDNLI) + codecs.BOM_UTF8 + raw(MEDNLI)), D,
         ("<file>, line 37", "BOM")),
    Case("mednli-larger-than-the-size-limit", "mednli", big_mednli, D,
         ("<file>: file of 2 MiB is larger than the limit of 1 MiB (raise it with MEDGATE_MAX_DATA_MB",)),
    Case("mednli-line-longer-than-16-mib", "mednli", mednli_edit(lambda rows: rows[1].update(sentence1="x" * (17 << 20))), D,
         ("<file>, line 2: line longer than 16 Mi characters; refused",)),
    # encodings and binary content
    Case("mednli-windows-1252-byte", "mednli", cp1252_mednli, D,
         ("<file>, line 5: not UTF-8 text: byte 0xE9 at byte offset <offset>", "save the file as UTF-8")),
    Case("mednli-utf16-without-bom", "mednli", put(MEDNLI, lambda: text(MEDNLI).encode("utf-16-le")), D,
         ("<file>: binary content (NUL bytes), or UTF-16 text without a byte order mark",)),
    Case("mednli-utf32", "mednli", put(MEDNLI, lambda: text(MEDNLI).encode("utf-32")), D,
         ("<file>: UTF-32 text; save the file as UTF-8",)),
    Case("mednli-gzip-under-the-right-name", "mednli", put(MEDNLI, lambda: gzip.compress(raw(MEDNLI))), D,
         ("<file>: the file is gzip-compressed, not the text this task reads",)),
    Case("mednli-zip-under-the-right-name", "mednli", put(MEDNLI, lambda: zipped({MEDNLI: raw(MEDNLI)})), D,
         ("<file>: the file is a zip archive (or an xlsx workbook), not the text this task reads",)),
    Case("mednli-xlsx-under-a-jsonl-name", "mednli", put(MEDNLI, lambda: raw(MEQSUM)), D,
         ("<file>: the file is a zip archive (or an xlsx workbook)",)),
    Case("mednli-pdf", "mednli", put(MEDNLI, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"), D,
         ("<file>: the file is a PDF document",)),
    Case("mednli-empty-file", "mednli", put(MEDNLI, b""), D, ("<file>: empty file",)),
    Case("mednli-a-folder-named-like-the-file", "mednli", lambda ctx: ctx.path(MEDNLI).mkdir(), D,
         ("<file>: cannot read file: Is a directory",)),
    # valid variants: must be read and scored like the pristine file
    Case("mednli-utf8-bom-runs", "mednli", put(MEDNLI, lambda: codecs.BOM_UTF8 + raw(MEDNLI)), R),
    Case("mednli-utf16-le-bom-runs", "mednli", in_utf16(MEDNLI, transform=with_accent), R),
    Case("mednli-utf16-be-bom-runs", "mednli", in_utf16(MEDNLI, "utf-16-be", with_accent), R),
    Case("mednli-crlf-runs", "mednli", put(MEDNLI, lambda: raw(MEDNLI).replace(b"\n", b"\r\n")), R),
    Case("mednli-blank-lines-runs", "mednli", put(MEDNLI, lambda: raw(MEDNLI).replace(b"}\n", b"}\n\n   \n")), R),
    Case("mednli-no-final-newline-runs", "mednli", put(MEDNLI, lambda: raw(MEDNLI).rstrip(b"\n")), R),
]


def medisumcode_twice(data: list) -> list:
    return data + data


def code_at(index: int, position: int, code: Any) -> Callable[[list], Any]:
    return lambda data: setitem(data[index]["icd_codes"][position], "code", code)


MEDISUMCODE_CASES = [
    Case("medisumcode-every-item-twice", "medisumcode", json_replace(CODE, medisumcode_twice), D,
         ("<file>, item 23: hadm_id '29000001' occurs twice (item 0 and item 23)",)),
    Case("medisumcode-same-item-under-another-id", "medisumcode",
         json_edit(CODE, lambda data: data.append({**data[2], "hadm_id": 39000003})), D,
         ("<file>, item 23: the same item as item 2 (hadm_id '29000003') under another hadm_id '39000003'",)),
    Case("medisumcode-icd9-4019", "medisumcode", json_edit(CODE, code_at(0, 0, "4019")), D,
         ("<file>, item 0, field 'icd_codes[0].code': '4019' is not an ICD-10 code (ICD-9?",)),
    Case("medisumcode-icd9-25000", "medisumcode", json_edit(CODE, code_at(3, 1, "250.00")), D,
         ("<file>, item 3, field 'icd_codes[1].code': '250.00' is not an ICD-10 code (ICD-9?",)),
    Case("medisumcode-icd9-V5861", "medisumcode", json_edit(CODE, code_at(5, 0, "V5861")), D,
         ("<file>, item 5, field 'icd_codes[0].code': 'V5861' is not an ICD-10 code (ICD-9?",)),
    Case("medisumcode-not-a-code-ABC", "medisumcode", json_edit(CODE, code_at(1, 0, "ABC")), D,
         ("<file>, item 1, field 'icd_codes[0].code': 'ABC' is not an ICD-10 code",)),
    Case("medisumcode-code-is-a-number", "medisumcode", json_edit(CODE, code_at(1, 0, 4019)), D,
         ("<file>, item 1, field 'icd_codes[0].code': expected {code, description} with a code",)),
    Case("medisumcode-codes-as-one-string", "medisumcode", json_edit(CODE, lambda data: data[4].update(icd_codes="I10, E119")), D,
         ("<file>, item 4, field 'icd_codes': expected a list",)),
    Case("medisumcode-excel-error-as-input", "medisumcode", json_edit(CODE, lambda data: data[6].update(text="#VALUE!")), D,
         ("<file>, item 6, field 'text': the Excel error value #VALUE! where text belongs",)),
    Case("medisumcode-text-is-a-number", "medisumcode", json_edit(CODE, lambda data: data[6].update(text=3.5)), D,
         ("<file>, item 6, field 'text': expected text, got a number 3.5",)),
    Case("medisumcode-missing-hadm-id", "medisumcode", json_edit(CODE, lambda data: data[8].pop("hadm_id")), D,
         ("<file>, item 8, field 'hadm_id': missing field",)),
    Case("medisumcode-two-json-documents-concatenated", "medisumcode", put(CODE, lambda: text(CODE) + "\n" + text(CODE)), D,
         ("<file>: not valid JSON (Extra data at line", "(two JSON documents concatenated?)")),
    Case("medisumcode-list-holding-a-string", "medisumcode", json_edit(CODE, lambda data: data.insert(3, "I10")), D,
         ("<file>, item 3: expected a JSON object, got text",)),
    Case("medisumcode-object-instead-of-list", "medisumcode", json_replace(CODE, lambda data: {"items": data}), D,
         ("<file>: expected a JSON list of items, got an object",)),
    Case("medisumcode-duplicate-json-key", "medisumcode",
         put(CODE, lambda: text(CODE).replace('"hadm_id": 29000002,', '"hadm_id": 29000002, "hadm_id": 29000099,', 1)), D,
         ("<file>", "the key 'hadm_id' occurs twice in one JSON object")),
    Case("medisumcode-windows-1252-byte", "medisumcode", cp1252_json(CODE, "Chief complaint: Chest pain"), D,
         ("<file>, line <line>: not UTF-8 text: byte 0xE9 at byte offset <offset>",)),
    Case("medisumcode-utf8-bom-runs", "medisumcode", put(CODE, lambda: codecs.BOM_UTF8 + raw(CODE)), R),
    Case("medisumcode-utf16-bom-runs", "medisumcode", in_utf16(CODE, transform=with_accent), R),
]


def qa_field(index: int, name: str, value: Any) -> Callable[[Ctx], Any]:
    return json_edit(QA, lambda data: data[index].update({name: value}))


MEDISUMQA_CASES = [
    Case("medisumqa-answer-NaN-text", "medisumqa", qa_field(5, "Answer", "NaN"), D,
         ("<file>, item 5, field 'Answer': 'NaN', a missing value written as text",)),
    Case("medisumqa-answer-null-text", "medisumqa", qa_field(6, "Answer", "null"), D,
         ("<file>, item 6, field 'Answer': 'null', a missing value written as text",)),
    Case("medisumqa-answer-N/A-text", "medisumqa", qa_field(7, "Answer", " N/A "), D,
         ("<file>, item 7, field 'Answer': 'N/A', a missing value written as text",)),
    Case("medisumqa-question-excel-ref-error", "medisumqa", qa_field(2, "Question", "#REF!"), D,
         ("<file>, item 2, field 'Question': the Excel error value #REF! where text belongs",)),
    Case("medisumqa-empty-answer", "medisumqa", qa_field(9, "Answer", "   "), D,
         ("<file>, item 9, field 'Answer': empty value",)),
    Case("medisumqa-answer-json-null", "medisumqa", qa_field(9, "Answer", None), D,
         ("<file>, item 9, field 'Answer': empty value",)),
    Case("medisumqa-missing-question", "medisumqa", json_edit(QA, lambda data: data[0].pop("Question")), D,
         ("<file>, item 0, field 'Question': missing field",)),
    Case("medisumqa-same-item-under-another-id", "medisumqa",
         json_edit(QA, lambda data: data.append({**data[4], "id": "synth-qa-copy"})), D,
         ("<file>, item 23: the same item as item 4 (id 'synth-qa-005') under another id 'synth-qa-copy'",)),
    Case("medisumqa-truncated-json", "medisumqa", put(QA, lambda: text(QA)[:5000]), D,
         ("<file>: not valid JSON (",)),
]


def two_summary_columns(book: Any) -> None:
    sheet = book["QS"]
    sheet.insert_cols(3)  # File, CHQ, <new>, Summary
    for row in range(1, sheet.max_row + 1):
        sheet.cell(row, 3).value = sheet.cell(row, 4).value
    sheet.cell(1, 3).value = "Summary"


def meqsum_cell(row: int, column: int, value: Any) -> Callable[[Any], None]:
    return lambda book: setattr(book["QS"].cell(row, column), "value", value)


def header_again(book: Any) -> None:
    sheet = book["QS"]
    sheet.insert_rows(10)
    for column, name in enumerate(("File", "CHQ", "Summary"), start=1):
        sheet.cell(10, column).value = name


def rename_sheet(book: Any) -> None:
    book["QS"].title = "Sheet1"


def only_header(book: Any) -> None:
    book["QS"].delete_rows(2, book["QS"].max_row)


MEQSUM_CASES = [
    Case("meqsum-two-summary-columns", "meqsum", xlsx_edit(two_summary_columns), D,
         ("<file>, row 1: column 'Summary' appears twice (columns 3 and 4)", "ambiguous")),
    Case("meqsum-no-sheet-QS", "meqsum", xlsx_edit(rename_sheet), D, ("<file>: no sheet 'QS' (sheets: Sheet1)",)),
    Case("meqsum-missing-column-CHQ", "meqsum", xlsx_edit(meqsum_cell(1, 2, "Question")), D,
         ("<file>: missing column(s) 'CHQ' (found: File, Question, Summary)",)),
    Case("meqsum-excel-error-NA-as-reference", "meqsum", xlsx_edit(meqsum_cell(5, 3, "#N/A")), D,
         ("<file>, row 5, field 'Summary': the Excel error value #N/A where text belongs",)),
    Case("meqsum-excel-error-VALUE-as-input", "meqsum", xlsx_edit(meqsum_cell(7, 2, "#VALUE!")), D,
         ("<file>, row 7, field 'CHQ': the Excel error value #VALUE! where text belongs",)),
    Case("meqsum-nan-as-reference", "meqsum", xlsx_edit(meqsum_cell(8, 3, "nan")), D,
         ("<file>, row 8, field 'Summary': 'nan', a missing value written as text",)),
    Case("meqsum-number-as-reference", "meqsum", xlsx_edit(meqsum_cell(9, 3, 42)), D,
         ("<file>, row 9, field 'Summary': expected text, got a number 42",)),
    Case("meqsum-header-row-inside-the-sheet", "meqsum", xlsx_edit(header_again), D,
         ("<file>, row 10: the header row again inside the data",)),
    Case("meqsum-value-beyond-the-last-column", "meqsum", xlsx_edit(meqsum_cell(6, 5, "stray note")), D,
         ("<file>, row 6", "'stray note'")),
    Case("meqsum-only-the-header", "meqsum", xlsx_edit(only_header), D, ("<file>: no items",)),
    Case("meqsum-empty-sheet-QS", "meqsum", xlsx_edit(lambda book: book["QS"].delete_rows(1, book["QS"].max_row)), D,
         ("<file>: sheet 'QS' is empty",)),
    Case("meqsum-same-file-id-twice", "meqsum", xlsx_edit(meqsum_cell(4, 1, "synth-chq-002")), D,
         ("<file>, row 4: File 'synth-chq-002' occurs twice (row 3 and row 4)",)),
    Case("meqsum-empty-file", "meqsum", put(MEQSUM, b""), D, ("<file>: empty file",)),
    Case("meqsum-broken-xlsx-zip-magic", "meqsum", put(MEQSUM, lambda: zipped({"hello.txt": b"not a workbook"})), D,
         ("<file>: not a readable xlsx workbook",)),
    Case("meqsum-csv-text-under-the-xlsx-name", "meqsum", put(MEQSUM, "File,CHQ,Summary\nq1,Why?,Why\n"), D,
         ("<file>: not an xlsx workbook (an xlsx file is a zip archive; this one is not)",)),
    Case("meqsum-old-xls-under-the-xlsx-name", "meqsum", put(MEQSUM, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)), D,
         ("<file>: the file is an old Excel/Word file (.xls/.doc)",)),
    # the CSV form of MeQSum (the other accepted name)
    Case("meqsum-csv-duplicate-column", "meqsum",
         lambda ctx: ctx.write("MeQSum_ACL2019_BenAbacha_Demner-Fushman.csv",
                               "File,CHQ,Summary,Summary\nq1,Why?,Why,Why\nq2,How?,How,How\n"), D,
         ("<data>/MeQSum_ACL2019_BenAbacha_Demner-Fushman.csv, line 1: column 'Summary' appears twice (columns 3 and 4)",)),
]


def shift_a_row(rows: list[list[str]]) -> None:
    """An unquoted comma: row 5's Assessment split in two cells."""
    rows[4] = rows[4][:3] + ["Pneumonia", " improving"] + rows[4][4:]


def unnamed_column(rows: list[list[str]]) -> None:
    """Excel exports trailing empty columns; a value typed into one must not vanish unseen."""
    for row in rows:
        row.append("")
    rows[5][-1] = "see attached"


def two_bom_csvs(ctx: Ctx) -> None:
    """Two exports of Excel ("CSV UTF-8", with a byte order mark each), rows 1-12 and 13-23,
    joined with cat: the second header starts with the BOM."""
    lines = text(PROBSUM).splitlines(keepends=True)
    first, second = [lines[0], *lines[1:13]], [lines[0], *lines[13:]]
    ctx.write(PROBSUM, b"".join(codecs.BOM_UTF8 + "".join(part).encode() for part in (first, second)))


def unterminated_quote(ctx: Ctx) -> None:
    """Line 11 loses the quote that closes its Assessment: the record runs on into line 12."""
    lines = text(PROBSUM).splitlines(keepends=True)
    at = lines[10].rindex('"')
    lines[10] = lines[10][:at] + lines[10][at + 1:]
    ctx.write(PROBSUM, "".join(lines))


def multi_line_record(rows: list[list[str]]) -> None:
    """Real BioNLP notes span lines inside quotes: the record of line 4 takes lines 4 to 6."""
    rows[3][1] = rows[3][1].replace(". ", ".\n", 2)
    assert rows[3][1].count("\n") == 2
    rows[3][4] = "NaN"


PROBSUM_CASES = [
    Case("problem-summary-duplicate-column-names", "problem_summary",
         csv_edit(lambda rows: setitem(rows[0], 2, "Summary")), D,
         ("<file>, line 1: column 'Summary' appears twice (columns 3 and 5)",)),
    Case("problem-summary-header-row-in-the-middle", "problem_summary",
         csv_edit(lambda rows: rows.insert(8, list(rows[0]))), D,
         ("<file>, line 9: the header row again inside the data (two files concatenated?)",)),
    Case("problem-summary-two-csv-files-concatenated", "problem_summary", put(PROBSUM, lambda: text(PROBSUM) * 2), D,
         ("<file>, line 25: the header row again inside the data (two files concatenated?)",)),
    Case("problem-summary-two-bom-files-concatenated", "problem_summary", two_bom_csvs, D,
         ("<file>, line 14: the header row again inside the data (two files concatenated?)",)),
    Case("problem-summary-unterminated-quote", "problem_summary", unterminated_quote, D, ("<file>, line 11",)),
    Case("problem-summary-error-in-a-multi-line-record", "problem_summary", csv_edit(multi_line_record), D,
         ("<file>, line 4 (synth-note-003), field 'Summary': 'NaN', a missing value written as text",)),
    Case("problem-summary-row-shifted-by-a-comma", "problem_summary", csv_edit(shift_a_row), D,
         ("<file>, line 5: 6 cells where the header has 5 (an unquoted comma, an unclosed quote or a missing cell?)",)),
    Case("problem-summary-row-missing-a-cell", "problem_summary", csv_edit(lambda rows: rows[6].pop(2)), D,
         ("<file>, line 7: 4 cells where the header has 5",)),
    Case("problem-summary-only-the-header", "problem_summary", put(PROBSUM, lambda: text(PROBSUM).splitlines()[0] + "\n"), D,
         ("<file>: no items",)),
    Case("problem-summary-subjectives-and-subjective-sections", "problem_summary",
         csv_edit(lambda rows: setitem(rows[0], 2, "Subjective Sections")), D,
         ("<file>, line 1: both 'Subjectives' (test file) and 'Subjective Sections' (train file) columns", "ambiguous")),
    Case("problem-summary-empty-reference", "problem_summary", csv_edit(lambda rows: setitem(rows[3], 4, " ; ")), D,
         ("<file>, line 4 (synth-note-003), field 'Summary': empty reference summary",)),
    Case("problem-summary-nan-reference", "problem_summary", csv_edit(lambda rows: setitem(rows[3], 4, "NaN")), D,
         ("<file>, line 4 (synth-note-003), field 'Summary': 'NaN', a missing value written as text",)),
    Case("problem-summary-excel-error-reference", "problem_summary", csv_edit(lambda rows: setitem(rows[2], 4, "#N/A")), D,
         ("<file>, line 3 (synth-note-002), field 'Summary': the Excel error value #N/A where text belongs",)),
    Case("problem-summary-excel-error-input", "problem_summary", csv_edit(lambda rows: setitem(rows[2], 3, "#NAME?")), D,
         ("<file>, line 3 (synth-note-002), field 'Assessment': the Excel error value #NAME? where text belongs",)),
    Case("problem-summary-same-file-id-twice", "problem_summary",
         csv_edit(lambda rows: setitem(rows[5], 0, rows[2][0])), D,
         ("<file>, line 6: File ID 'synth-note-002' occurs twice (line 3 and line 6)",)),
    Case("problem-summary-windows-1252-degree-sign", "problem_summary", cp1252_csv, D,
         ("<file>, line 4: not UTF-8 text: byte 0xB0 at byte offset <offset>",)),
    Case("problem-summary-semicolon-separated-export", "problem_summary",
         put(PROBSUM, lambda: "File ID;Subjectives;Objectives;Assessment;Summary\n"
                              "n1;Cough 3 days.;T 38.2;Pneumonia.;pneumonia\n"
                              "n2;Dyspnea.;SpO2 88%;COPD.;COPD exacerbation\n"), D,
         ("<file>, line 1: one column named", "the file is separated by ';', not by commas")),
    Case("problem-summary-value-under-an-unnamed-column", "problem_summary", csv_edit(unnamed_column), D,
         ("<file>, line 6", "'see attached'")),
    Case("problem-summary-xlsx-under-the-csv-name", "problem_summary", put(PROBSUM, lambda: raw(MEQSUM)), D,
         ("<file>: the file is a zip archive (or an xlsx workbook), not the text this task reads",)),
    Case("problem-summary-utf16-bom-runs", "problem_summary", in_utf16(PROBSUM), R, args=("--limit", "3")),
    Case("problem-summary-excel-crlf-and-bom-runs", "problem_summary",
         put(PROBSUM, lambda: codecs.BOM_UTF8 + raw(PROBSUM).replace(b"\n", b"\r\n")), R, args=("--limit", "3")),
]


def drop_patients(data: dict) -> dict:
    return {pid: data[pid] for pid in list(data)[:2]}


def duplicate_patient_key(ctx: Ctx) -> None:
    """The same patient id twice in the top-level object (two exports merged by hand)."""
    body = text(LONG)
    data = json.loads(body)
    extra = json.dumps({"patient_02": data["patient_02"]}, indent=1)[1:-1].strip()
    body = body.rstrip()
    assert body.endswith("}")
    ctx.write(LONG, body[:-1].rstrip() + ",\n " + extra + "\n}\n")


LONGHEALTH_CASES = [
    Case("longhealth-patient-id-twice", "longhealth", duplicate_patient_key, D,
         ("<file>", "the key 'patient_02' occurs twice in one JSON object")),
    Case("longhealth-same-patient-under-another-id", "longhealth",
         longhealth(lambda data: setitem(data, "patient_99", data["patient_03"])), D,
         ("<file>, patient patient_99: the same item as patient patient_03 (patient 'patient_03') under another patient 'patient_99'",)),
    Case("longhealth-correct-is-a-letter", "longhealth", longhealth(lambda data: question(data).update(correct="E")), D,
         ("<file>, patient patient_02, question 1, field 'correct'",)),
    Case("longhealth-correct-names-no-option", "longhealth",
         longhealth(lambda data: question(data).update(correct="Pheochromocytoma")), D,
         ("<file>, patient patient_02, question 1, field 'correct'", "'Pheochromocytoma'")),
    Case("longhealth-correct-nan-text", "longhealth", longhealth(lambda data: question(data).update(correct="nan")), D,
         ("<file>, patient patient_02, question 1, field 'correct': 'nan', a missing value written as text",)),
    Case("longhealth-too-few-patients-for-distractors", "longhealth", longhealth_replace(drop_patients), D,
         ("<file>, patient patient_01: 3 documents of other patients", "10 distractors")),
    Case("longhealth-answer-location-names-a-missing-text", "longhealth",
         longhealth(lambda data: question(data, "patient_01", 0)["answer_location"].update(
             text_9=question(data, "patient_01", 0)["answer_location"].pop("text_0"))), D,
         ("<file>, patient patient_01, question 0, field 'answer_location.text_9'",
          "names 'text_9', which is not among the patient's texts")),
    Case("longhealth-answer-location-beyond-the-document", "longhealth",
         longhealth(lambda data: question(data, "patient_03", 2)["answer_location"].update(
             {next(iter(question(data, "patient_03", 2)["answer_location"])): {"start": [0.2], "end": [1.7]}})), D,
         ("<file>, patient patient_03, question 2, field 'answer_location.text_", "fractions of the document in [0, 1]")),
    Case("longhealth-texts-is-a-list", "longhealth",
         longhealth(lambda data: data["patient_04"].update(texts=list(data["patient_04"]["texts"].values()))), D,
         ("<file>, patient patient_04, field 'texts': expected an object, got a list",)),
    Case("longhealth-document-text-is-excel-error", "longhealth",
         longhealth(lambda data: data["patient_05"]["texts"].update(text_1="#REF!")), D,
         ("<file>, patient patient_05, field 'texts.text_1': the Excel error value #REF! where text belongs",)),
    Case("longhealth-missing-option", "longhealth", longhealth(lambda data: question(data, "patient_05", 0).pop("answer_c")), D,
         ("<file>, patient patient_05, question 0, field 'answer_c': missing field",)),
    Case("longhealth-no-questions", "longhealth", longhealth(lambda data: data["patient_01"].update(questions=[])), D,
         ("<file>, patient patient_01, field 'questions': empty",)),
    Case("longhealth-list-of-patients", "longhealth", longhealth_replace(lambda data: list(data.values())), D,
         ("<file>: expected a JSON object of patients",)),
    Case("longhealth-utf16-bom-runs", "longhealth", in_utf16(LONG), R),
]


def toml(body: str) -> Callable[[Ctx], Any]:
    return models_toml(body)


FAKE = '[models.fake]\npath = "."\nbackend = "fake"\nfake_reply = "ENTAILMENT"\n'

MODELS_CASES = [
    Case("models-empty-file", "mednli", toml(""), U, ("<models>: defines no models and no --model was given",),
         model=False),
    Case("models-empty-file-with-a-model", "mednli", toml(""), U,
         ("unknown model 'fake': not in <models>", "known models: (none)")),
    Case("models-utf8-bom-runs", "mednli", models_toml(codecs.BOM_UTF8 + MODELS.encode()), R),
    Case("models-utf16-bom-runs", "mednli", models_toml(MODELS.encode("utf-16")), R),
    Case("models-windows-1252-byte", "mednli",
         models_toml(("# Modelle f\u00fcr die Klinik\n" + MODELS).encode("cp1252")), U,
         ("<models>: line 1: not UTF-8 (byte 0xFC at byte offset 11)", "save it as UTF-8")),
    Case("models-wrong-type-names-the-dotted-key", "mednli", toml(MODELS.replace("fake_reply", 'max_model_len = "big"\nfake_reply')), U,
         ("<models>: models.fake.max_model_len: must be a positive integer, got string 'big'",)),
    Case("models-option-of-another-backend", "mednli",
         toml('default = "v"\n[models.v]\nhub = "org/model"\nconcurrency = 4\n'), U,
         ("<models>: models.v.concurrency: an option of backend openai, not of backend vllm",)),
    Case("models-unknown-key", "mednli", toml(FAKE + "temprature = 0.2\n"), U,
         ("<models>: models.fake.temprature: unknown key (allowed: ",)),
    Case("models-invalid-toml", "mednli", toml(FAKE + "seed = \n"), U, ("<models>: not valid TOML",)),
    Case("models-threshold-outside-range", "mednli", toml(FAKE + "[models.fake.thresholds]\nmednli = { accuracy = 55 }\n"), U,
         ("<models>: models.fake.thresholds.mednli.accuracy: 55 is outside the metric's range [0.0, 1.0]",)),
    Case("models-threshold-as-text", "mednli", toml(FAKE + '[models.fake.thresholds]\nmednli = { accuracy = "0.5" }\n'), U,
         ("<models>: models.fake.thresholds.mednli.accuracy: must be a number, got string '0.5'",)),
    Case("models-unknown-task", "mednli", toml(FAKE + "[models.fake.thresholds]\nmedqa = { accuracy = 0.5 }\n"), U,
         ("<models>: models.fake.thresholds.medqa: unknown task (known: ",)),
    Case("models-unknown-metric", "mednli", toml(FAKE + "[models.fake.thresholds]\nmednli = { f1 = 0.5 }\n"), U,
         ("<models>: models.fake.thresholds.mednli.f1: unknown metric (known for mednli: accuracy, no_label_rate)",)),
    Case("models-default-names-no-model", "mednli", toml('default = "meditron"\n' + FAKE), U,
         ("<models>: default: names 'meditron', which is not a model or alias in this file",)),
    Case("models-unquoted-dotted-name", "mednli", toml('[models.Llama-3.1-8B]\nhub = "meta-llama/Llama-3.1-8B"\n'), U,
         ('<models>: models.Llama-3.', 'must be quoted: [models."Llama-3.1-8B"]')),
    Case("models-no-source", "mednli", toml('[models.fake]\nbackend = "fake"\n'), U,
         ("<models>: models.fake: needs exactly one of embedded, path, hub (got none)",)),
    Case("models-tolerance-is-a-boolean", "mednli", toml(FAKE + "tolerance = true\n"), U,
         ("<models>: models.fake.tolerance: must be a number in [0, 1], got boolean True",)),
    Case("models-same-table-twice", "mednli", toml(FAKE + "\n" + FAKE), U,
         ("<models>: not valid TOML: Cannot declare ('models', 'fake') twice (at line 6",)),
    Case("models-fake-reply-is-a-number", "mednli", toml(FAKE.replace('"ENTAILMENT"', "5")), U,
         ("<models>: models.fake.fake_reply: must be a string, got integer 5",)),
    Case("models-file-is-a-folder", "mednli", lambda ctx: (ctx.models.unlink(), ctx.models.mkdir()), U,
         ("<models>: not a regular file",)),
    Case("models-file-missing", "mednli", lambda ctx: ctx.models.unlink(), U, ("<models>: models file not found",)),
]


def data_below(ctx: Ctx) -> None:
    (ctx.data / "clue-2024").mkdir()
    shutil.copy(FIXTURES / MEDNLI, ctx.data / "clue-2024")


def offline(name: str) -> Callable[[Ctx], Any]:
    """The pristine file, with the hub off (no case may reach the network)."""
    def build(ctx: Ctx) -> None:
        ctx.env["HF_HUB_OFFLINE"] = "1"
        pristine(name)(ctx)
    return build


def zip_of_the_data(ctx: Ctx) -> None:
    """The data folder as the zip it was mailed in."""
    (ctx.tmp / "data.zip").write_bytes(zipped({MEDNLI: raw(MEDNLI)}))


CLI_CASES = [
    Case("cli-data-dir-one-folder-too-high", "mednli", data_below, U,
         ("--data-dir <data>: holds none of the task files", "did you mean --data-dir <data>/clue-2024?")),
    Case("cli-data-dir-without-any-task-file", "mednli", lambda ctx: ctx.write("notes.txt", "hello"), U,
         ("--data-dir <data>: holds none of the task files (mli_test_v1.jsonl",)),
    Case("cli-data-dir-is-a-file", "mednli", zip_of_the_data, U, ("--data-dir <tmp>/data.zip: not a directory",),
         args=("--data-dir=<tmp>/data.zip",), data_dir=False),
    Case("cli-data-dir-does-not-exist", "mednli", lambda ctx: None, U, ("--data-dir <tmp>/no-such-folder: not a directory",),
         args=("--data-dir=<tmp>/no-such-folder",), data_dir=False),
    Case("cli-reports-dir-is-a-file", "mednli", lambda ctx: (pristine(MEDNLI)(ctx), (ctx.tmp / "out.md").write_text("x")), U,
         ("--reports-dir <tmp>/out.md: a file is in the way; give a folder",), args=("--reports-dir=<tmp>/out.md",)),
    Case("cli-save-baseline-over-the-compared-one", "mednli", pristine(MEDNLI), U,
         ("--save-baseline v1 --baseline v1: saving would overwrite the baseline",),
         args=("--save-baseline", "v1", "--baseline", "v1")),
    Case("cli-unknown-baseline", "mednli", pristine(MEDNLI), U,
         ("--baseline nope: no such baseline in <reports>/baselines (saved: none)",), args=("--baseline", "nope")),
    Case("cli-baseline-name-with-a-path", "mednli", pristine(MEDNLI), U, ("baseline name '../v1': use ",),
         args=("--save-baseline", "../v1")),
    Case("cli-empty-model-name", "mednli", pristine(MEDNLI), U, ("--model: an empty model name",), args=("--model=",)),
    Case("cli-unknown-model", "mednli", pristine(MEDNLI), U,
         ("unknown model 'gpt-9'", "known models: fake"), args=("--model", "gpt-9")),
    Case("cli-limit-zero", "mednli", pristine(MEDNLI), U, ("--limit", "expected a positive integer, got 0"),
         args=("--limit", "0")),
    Case("cli-limit-not-a-number", "mednli", pristine(MEDNLI), U, ("--limit", "expected a positive integer, got 'ten'"),
         args=("--limit", "ten")),
    Case("cli-chunk-size-zero", "mednli", pristine(MEDNLI), U, ("--chunk-size", "expected a positive integer, got 0"),
         args=("--chunk-size", "0")),
    Case("cli-baselines-dir-is-a-file", "mednli", lambda ctx: (pristine(MEDNLI)(ctx), (ctx.tmp / "baselines").write_text("")),
         U, ("--baselines-dir <tmp>/baselines: a file is in the way; give a folder",),
         args=("--save-baseline", "v2", "--baselines-dir=<tmp>/baselines")),
    Case("cli-rejudge-without-cache", "mednli", pristine(MEDNLI), U,
         ("--rejudge reads the generation cache: it cannot be combined with --no-cache",), args=("--rejudge", "--no-cache")),
    Case("cli-bertscore-layers-beyond-the-encoder", "mednli", pristine(MEDNLI), U,
         ("--bertscore-layers 9: the BERTScore encoder all-MiniLM-L6-v2", "has 6 layers (1 to 6)"),
         args=("--bertscore-layers", "9")),
    Case("cli-bertscore-encoder-missing-folder", "mednli", pristine(MEDNLI), U,
         ("BERTScore encoder '<tmp>/encoders/scibert': no such folder, and not a hub id",),
         args=("--bertscore-encoder", "<tmp>/encoders/scibert")),
    Case("cli-bertscore-encoder-missing-folder-with-layers", "mednli", offline(MEDNLI), U,
         ("BERTScore encoder", "<tmp>/encoders/scibert"),
         args=("--bertscore-encoder", "<tmp>/encoders/scibert", "--bertscore-layers", "6")),
    Case("cli-bertscore-hub-encoder-offline-not-cached", "mednli", offline(MEDNLI), U,
         ("BERTScore encoder 'medgate-corpus/no-such-encoder': not a local folder and not in the hub cache",),
         args=("--bertscore-encoder", "medgate-corpus/no-such-encoder", "--bertscore-layers", "8")),
    Case("cli-data-dir-empty-string", "mednli", pristine(MEDNLI), U, ("--data-dir",),
         args=("--data-dir=",), data_dir=False),  # "$DATA" unset in a CI job: never the synthetic data
    Case("cli-bertscore-encoder-folder-without-files", "mednli",
         lambda ctx: (pristine(MEDNLI)(ctx), (ctx.tmp / "encoder").mkdir()), U,
         ("BERTScore encoder <tmp>/encoder: cannot read num_hidden_layers from config.json",),
         args=("--bertscore-encoder", "<tmp>/encoder")),
]

CASES = (MEDNLI_CASES + MEDISUMCODE_CASES + MEDISUMQA_CASES + MEQSUM_CASES + PROBSUM_CASES + LONGHEALTH_CASES
         + MODELS_CASES + CLI_CASES)

# ---------------------------------------------------------------------------------------------
# The runner.


def copy_modules(pytester: pytest.Pytester, *tasks: str) -> None:
    """Only the test modules of the tasks under test (fast)."""
    folder = pytester.path / "tests_medical"
    folder.mkdir(exist_ok=True)
    for task in tasks:
        name = f"test_{task}.py"
        (folder / name).write_text((REPO / "tests_medical" / name).read_text())


# The cases run in-process (pytester.runpytest_inprocess): a fresh interpreter per case costs
# seconds of start-up, and the corpus must stay fast. Exit codes, outcomes and messages were
# checked to be the same as in a subprocess for every case: run the file with
# MEDGATE_CORPUS_SUBPROCESS=1 to run every case in a subprocess, as a user's run is. Always in a
# subprocess: cases that could hang or eat memory (a FIFO, a device), under a timeout, and the
# pristine runs of the text tasks (BERTScore).
#
# In-process runs may not import torch: pytester drops the modules first imported inside a run,
# and a second import of torch in one process crashes it. A bad file is refused before scoring,
# and a valid one reads the BERTScore pairs of its pristine run from the cache, so no case needs
# torch; one that gets there (a bad file accepted, or a good file read wrong) fails with that.
IN_SUBPROCESS = os.environ.get("MEDGATE_CORPUS_SUBPROCESS", "") not in ("", "0")
TEXT_TASKS = ("meqsum", "problem_summary", "medisumqa")


class _NoTorch:
    """A meta path finder for in-process runs: importing torch is an error saying why."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise ImportError("medgate corpus: this case reached BERTScore scoring (torch); a bad file must be "
                              "refused before scoring, a valid one is scored from the pristine run's cached pairs")


def _warm_imports() -> None:
    """Import once, here, what a session imports lazily: pytester drops modules first imported
    inside an in-process run and would import them again for every case."""
    import matplotlib

    matplotlib.use("Agg")
    import icd10  # noqa: F401
    import matplotlib.pyplot
    import openpyxl  # noqa: F401

    import medgate.pipeline.model_run
    import medgate.reporting.allure
    import medgate.reporting.charts
    import medgate.reporting.summary
    import medgate.reporting.table  # noqa: F401


if not IN_SUBPROCESS:
    _warm_imports()


def medgate(pytester: pytest.Pytester, models: Path, *args: str, data_dir: Path | None,
            reports: str = "reports", subprocess: bool = False, timeout: float = 300) -> pytest.RunResult:
    """One medgate session in pytester's folder, reports in ``reports`` there."""
    data = [f"--data-dir={data_dir}"] if data_dir is not None else []
    # "--opt=value" forms: pytest takes separate path-like values for rootdir candidates.
    argv = ["-p", "no:cacheprovider", f"--models-file={models}", *data, f"--reports-dir={pytester.path / reports}",
            *args]
    if subprocess or IN_SUBPROCESS:
        return pytester.runpytest_subprocess(*argv, timeout=timeout)
    already = "torch" in sys.modules
    if not already:
        sys.meta_path.insert(0, _NoTorch)
    try:
        return pytester.runpytest_inprocess(*argv)
    finally:
        if not already:
            sys.meta_path.remove(_NoTorch)


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


# pytest's own traceback style has no "Traceback" line: its source lines ("    def ...", "> ...")
# and "E   " exception lines, and "path.py:123: SomeError" locations give it away.
_PYTEST_TRACE = re.compile(r"^(>\s|E\s{3}|\S+\.py:\d+: \w+)", re.MULTILINE)


def assert_no_traceback(result: pytest.RunResult) -> None:
    shown = output(result)
    for marker in NO_TRACE:
        assert marker not in shown, f"{marker!r} in the output:\n{shown}"
    trace = _PYTEST_TRACE.search(shown)
    assert trace is None, f"a traceback in the output ({trace.group(0)!r}):\n{shown}"


def assert_words(words: tuple[str, ...], where: str, shown: str) -> None:
    missing = [w for w in words if w not in shown]
    assert not missing, f"missing from {where}: {missing}\n--- {where} ---\n{shown}"


def summary_md(pytester: pytest.Pytester) -> str:
    path = pytester.path / "reports" / "summary.md"
    assert path.is_file(), "summary.md was not written"
    return path.read_text()


def n_metrics(task: str) -> int:
    return len(TASKS[task].metrics)


def assert_data_error(result: pytest.RunResult, pytester: pytest.Pytester, task: str, words: tuple[str, ...]) -> None:
    """Exit 1, every metric test of the task errors with the one-line message, the summary says so."""
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output(result)
    assert_no_traceback(result)
    result.assert_outcomes(errors=n_metrics(task))
    assert_words((f"DataError: {words[0]}", *words[1:]), "the terminal", result.stdout.str())
    summary = summary_md(pytester)
    assert summary.startswith("# medgate: FAILED"), summary[:300]
    assert_words(words, "summary.md", summary)


def assert_usage_error(result: pytest.RunResult, words: tuple[str, ...]) -> None:
    """Exit 4 before anything runs, one ERROR: line."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output(result)
    assert_no_traceback(result)
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, f"expected one ERROR: line:\n{result.stderr.str()}"
    assert_words(words, "stderr", result.stderr.str())


_PRISTINE: dict[tuple[str, str], tuple[int, float]] = {}


def pristine_result(pytester: pytest.Pytester, task: str, args: list[str]) -> tuple[int, float]:
    """Items scored and the gated value on the shipped fixture, with the same options (one run
    per task and options, kept for the session)."""
    key = (task, " ".join(args))
    if key not in _PRISTINE:
        models = pytester.path / "pristine-models.toml"
        models.write_text(MODELS)
        result = medgate(pytester, models, "tests_medical", "--model", "fake", *args, data_dir=FIXTURES,
                         reports="pristine-reports", subprocess=task in TEXT_TASKS)
        assert result.ret == pytest.ExitCode.OK, output(result)
        gated = next(o for o in outcomes(pytester.path / "pristine-reports") if o["metric"] == GATED[task])
        _PRISTINE[key] = (gated["provenance"]["n_items"], gated["value"])
    return _PRISTINE[key]


def assert_scored(result: pytest.RunResult, pytester: pytest.Pytester, task: str, pristine: tuple[int, float]) -> None:
    """Exit 0, the gated metric passes, the others skip (no threshold), and the task is scored as
    the shipped file is: the same number of items and the same value."""
    assert result.ret == pytest.ExitCode.OK, output(result)
    assert_no_traceback(result)
    result.assert_outcomes(passed=1, skipped=n_metrics(task) - 1)
    assert summary_md(pytester).startswith("# medgate: PASSED")
    gated = next(o for o in outcomes(pytester.path / "reports") if o["metric"] == GATED[task])
    assert (gated["provenance"]["n_items"], gated["value"]) == pristine


@pytest.fixture(scope="session")
def scoring_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generation cache for the runs that score: a text task's BERTScore pairs are computed
    once (by the pristine run), a file read right gives the same pairs, which come from the
    cache; a file read wrong gives other texts, which are scored anew."""
    return tmp_path_factory.mktemp("scoring") / "generations.sqlite"


def fresh_ctx(pytester: pytest.Pytester, tmp_path: Path) -> Ctx:
    data = tmp_path / "data"
    data.mkdir()
    models = tmp_path / "models.toml"
    models.write_text(MODELS)
    return Ctx(tmp=tmp_path, data=data, models=models, reports=pytester.path / "reports")


@pytest.mark.parametrize("case", [c.param for c in CASES])
def test_bad_input(case: Case, pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   scoring_cache: Path) -> None:
    ctx = fresh_ctx(pytester, tmp_path)
    if case.kind == R:
        monkeypatch.setenv("MEDGATE_GENERATIONS", str(scoring_cache))
    case.build(ctx)
    for name, value in ctx.env.items():
        monkeypatch.setenv(name, value)
    names = {"file": str(ctx.data / FILE_OF[case.task]), "data": str(ctx.data), "tmp": str(tmp_path),
             "reports": str(ctx.reports), "models": str(ctx.models), **ctx.names}

    def fill(s: str) -> str:
        for name, value in names.items():
            s = s.replace(f"<{name}>", value)
        return s

    copy_modules(pytester, case.task)
    args = [fill(a) for a in case.args]
    if case.kind == R:  # first: it fills the cache of BERTScore pairs
        pristine = pristine_result(pytester, case.task, args)
    model = ["--model", "fake"] if case.model else []
    result = medgate(pytester, ctx.models, "tests_medical", *model, *args, data_dir=ctx.data if case.data_dir else None)
    words = tuple(fill(w) for w in case.words)
    if case.kind == D:
        assert_data_error(result, pytester, case.task, words)
    elif case.kind == U:
        assert_usage_error(result, words)
    else:
        assert_scored(result, pytester, case.task, pristine)


# ---------------------------------------------------------------------------------------------
# Cases that need their own setup.


def run_tasks(pytester: pytest.Pytester, ctx: Ctx, *tasks: str, args: tuple[str, ...] = (),
              subprocess: bool = False, timeout: float = 300) -> pytest.RunResult:
    copy_modules(pytester, *tasks)
    return medgate(pytester, ctx.models, "tests_medical", "--model", "fake", *args, data_dir=ctx.data,
                   subprocess=subprocess, timeout=timeout)


@pytest.mark.parametrize("make", [
    pytest.param(lambda path: os.mkfifo(path), id="fifo"),
    pytest.param(lambda path: path.symlink_to("/dev/zero"), id="symlink-to-dev-zero"),
    pytest.param(lambda path: path.symlink_to("/dev/urandom"), id="symlink-to-dev-urandom"),
])
def test_a_pipe_or_device_under_the_dataset_name_is_refused_without_hanging(make, pytester, tmp_path):
    """Reading a FIFO blocks for ever, /dev/zero never ends: the check must come before any read.
    In a subprocess, under a timeout (a hang fails the test instead of the whole corpus)."""
    ctx = fresh_ctx(pytester, tmp_path)
    make(ctx.path(MEDNLI))
    started = time.monotonic()
    result = run_tasks(pytester, ctx, "mednli", subprocess=True, timeout=120)
    assert time.monotonic() - started < 120
    assert_data_error(result, pytester, "mednli", (
        f"{ctx.path(MEDNLI)}: not a regular file (a device, pipe or socket); give the dataset file itself",))


@pytest.mark.parametrize("garbage", [
    pytest.param(b"this is not a database\n" * 200, id="text"),
    pytest.param(b"SQLite format 3\x00" + bytes(range(256)) * 8, id="sqlite-header-then-garbage"),
])
def test_a_corrupt_generation_cache_is_a_usage_error_naming_it_and_no_cache_gets_past_it(
        garbage, pytester, tmp_path, monkeypatch):
    ctx = fresh_ctx(pytester, tmp_path)
    ctx.write(MEDNLI, raw(MEDNLI))
    cache = tmp_path / "generations.sqlite"
    cache.write_bytes(garbage)
    monkeypatch.setenv("MEDGATE_GENERATIONS", str(cache))
    result = run_tasks(pytester, ctx, "mednli")
    assert_usage_error(result, (f"{cache}: the generation cache cannot be used", "delete the file", "--no-cache"))
    result = run_tasks(pytester, ctx, "mednli", args=("--no-cache",))
    assert result.ret == pytest.ExitCode.OK, output(result)
    result.assert_outcomes(passed=1, skipped=1)
    assert cache.read_bytes() == garbage  # never "repaired" behind the user's back


def test_a_generation_cache_path_that_is_a_folder_is_a_usage_error(pytester, tmp_path, monkeypatch):
    ctx = fresh_ctx(pytester, tmp_path)
    ctx.write(MEDNLI, raw(MEDNLI))
    (tmp_path / "generations.sqlite").mkdir()
    monkeypatch.setenv("MEDGATE_GENERATIONS", str(tmp_path / "generations.sqlite"))
    result = run_tasks(pytester, ctx, "mednli")
    assert_usage_error(result, (f"{tmp_path / 'generations.sqlite'}: the generation cache path is not a file",))


def test_a_known_gap_does_not_hide_a_broken_file(pytester, tmp_path):
    """expected_failures covers a verdict below the bar, never an error: a broken file of that
    task errors its tests (not xfail), the run exits 1 and the summary says FAILED."""
    ctx = fresh_ctx(pytester, tmp_path)
    ctx.models.write_text(MODELS + '\n[models.fake.expected_failures]\nmednli = "a known gap"\n'
                                   'medisumcode = "another known gap"\n')
    mednli_edit(lambda rows: rows[4].update(gold_label="maybe"))(ctx)
    json_edit(CODE, code_at(0, 0, "4019"))(ctx)
    result = run_tasks(pytester, ctx, "mednli", "medisumcode")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output(result)
    assert_no_traceback(result)
    result.assert_outcomes(errors=2 + 7)  # not xfailed
    assert_words((f"DataError: {ctx.path(MEDNLI)}, line 5, field 'gold_label': 'maybe' is not one of",
                  f"DataError: {ctx.path(CODE)}, item 0, field 'icd_codes[0].code': '4019' is not an ICD-10 code"),
                 "the terminal", result.stdout.str())
    summary = summary_md(pytester)
    assert summary.startswith("# medgate: FAILED"), summary[:300]
    assert {o["status"] for o in outcomes(pytester.path / "reports")} == {"error"}


def test_one_broken_file_leaves_the_other_tasks_scored(pytester, tmp_path):
    ctx = fresh_ctx(pytester, tmp_path)
    put(MEDNLI, lambda: gzip.compress(raw(MEDNLI)))(ctx)
    pristine(CODE)(ctx)
    result = run_tasks(pytester, ctx, "mednli", "medisumcode")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output(result)
    assert_no_traceback(result)
    result.assert_outcomes(errors=2, passed=1, skipped=6)
    assert f"DataError: {ctx.path(MEDNLI)}: the file is gzip-compressed" in result.stdout.str()
    by_task = {(o["task"], o["status"]) for o in outcomes(pytester.path / "reports")}
    assert by_task == {("mednli", "error"), ("medisumcode", "pass"), ("medisumcode", "no_threshold")}


def test_a_data_dir_missing_one_task_file_skips_that_task_and_the_summary_names_the_file(pytester, tmp_path):
    ctx = fresh_ctx(pytester, tmp_path)
    pristine(CODE)(ctx)  # MedNLI's file is not there
    result = run_tasks(pytester, ctx, "mednli", "medisumcode", args=("-rs",))
    assert result.ret == pytest.ExitCode.OK, output(result)
    assert_no_traceback(result)
    result.assert_outcomes(passed=1, skipped=2 + 6)
    missing = f"{ctx.path(MEDNLI)}: MedNLI data file not found"
    assert missing in result.stdout.str()
    summary = summary_md(pytester)
    assert summary.startswith("# medgate: PASSED"), summary[:300]
    assert "Not run, no data file" in summary and missing in summary


def test_a_run_that_scored_nothing_exits_1_and_says_nothing_scored(pytester, tmp_path):
    ctx = fresh_ctx(pytester, tmp_path)
    pristine(CODE)(ctx)  # only a file of a task that is not selected
    result = run_tasks(pytester, ctx, "mednli")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output(result)
    assert_no_traceback(result)
    result.assert_outcomes(skipped=2)
    assert "medgate: NOTHING SCORED" in result.stdout.str()
    assert summary_md(pytester).startswith("# medgate: NOTHING SCORED")


def test_a_missing_file_of_a_task_asked_for_by_name_is_an_error(pytester, tmp_path):
    """Skipping is for tasks swept in by a folder; a task named on the command line must run."""
    ctx = fresh_ctx(pytester, tmp_path)
    pristine(CODE)(ctx)
    copy_modules(pytester, "mednli", "medisumcode")
    result = medgate(pytester, ctx.models, "tests_medical", "-k", "mednli", "--model", "fake", data_dir=ctx.data)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output(result)
    assert_no_traceback(result)
    result.assert_outcomes(errors=2)
    assert f"{ctx.path(MEDNLI)}: MedNLI data file not found" in result.stdout.str()
    assert summary_md(pytester).startswith("# medgate: FAILED")
