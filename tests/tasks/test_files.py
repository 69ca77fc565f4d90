"""The checked readers: what a hospital export can hold is read or refused with one line that
names the file, the item and the field (unit level; tests/test_bad_inputs.py runs whole sessions)."""

from __future__ import annotations

import codecs
import gzip
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import medgate.tasks.files as files
from medgate.core.errors import DataError
from medgate.tasks.files import check_text, check_unique, read_json, read_jsonl, read_table, text_lines


def test_utf8_with_and_without_bom_and_utf16_with_bom_read_the_same(tmp_path):
    rows = '{"a": "Fièvre à 39 °C"}\n{"a": "second"}\n'
    variants = {"plain": rows.encode("utf-8"), "bom": codecs.BOM_UTF8 + rows.encode("utf-8"),
                "utf16": rows.encode("utf-16"), "utf16be": codecs.BOM_UTF16_BE + rows.encode("utf-16-be")}
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
        assert read_jsonl(tmp_path / name) == [(1, {"a": "Fièvre à 39 °C"}), (2, {"a": "second"})], name


def test_windows_1252_bytes_are_refused_naming_line_and_byte_offset(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": "ok"}\n{"a": "Fi\xe8vre"}\n')
    with pytest.raises(DataError, match=r"x.jsonl, line 2: not UTF-8 text: byte 0xE8 at byte offset 21 "
                                        r"\(Windows-1252 or Latin-1\?\)"):
        read_jsonl(path)


@pytest.mark.parametrize(("data", "words"), [
    (gzip.compress(b'{"a": 1}\n'), "gzip-compressed"),
    (b"PK\x03\x04rest", "a zip archive"),
    (b"%PDF-1.7 ...", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1", "old Excel"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b'{"a": 1}\x00\x00\x00', r"binary content \(NUL bytes\)"),
    (b"", "empty file"),
])
def test_binary_content_is_refused_by_its_magic_bytes(tmp_path, data, words):
    path = tmp_path / "mli_test_v1.jsonl"
    path.write_bytes(data)
    with pytest.raises(DataError, match=words):
        read_jsonl(path)


def test_only_regular_files_are_read(tmp_path):
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)  # opening it for reading would block forever
    with pytest.raises(DataError, match="not a regular file"):
        read_jsonl(fifo)
    device = tmp_path / "zero.jsonl"
    device.symlink_to("/dev/zero")  # reading it would never end
    with pytest.raises(DataError, match="not a regular file"):
        read_jsonl(device)
    with pytest.raises(DataError, match="Is a directory"):
        read_jsonl(tmp_path)


def test_size_and_line_limits(tmp_path, monkeypatch):
    path = tmp_path / "big.jsonl"
    path.write_text('{"a": "' + "x" * (2 << 20) + '"}\n')
    monkeypatch.setenv(files.MAX_FILE_MB_ENV, "1")
    with pytest.raises(DataError, match=r"big.jsonl: file of 2 MiB is larger than the limit of 1 MiB \(raise it with "
                                        "MEDGATE_MAX_DATA_MB"):
        read_jsonl(path)
    monkeypatch.delenv(files.MAX_FILE_MB_ENV)
    monkeypatch.setattr(files, "MAX_LINE_CHARS", 1 << 20)
    with pytest.raises(DataError, match=r"big.jsonl, line 1: line longer than 1 Mi characters"):
        read_jsonl(path)
    csv_path = tmp_path / "big.csv"
    csv_path.write_text('a,b\n"' + "x" * (2 << 20) + '",1\n')
    with pytest.raises(DataError, match=r"big.csv, line 2: line longer than|big.csv, line 2: not valid CSV \(field larger"):
        read_table(csv_path)


def test_a_key_twice_in_one_json_object_is_refused(tmp_path):
    path = tmp_path / "b.json"
    path.write_text('{"patient_01": {"texts": {}}, "patient_01": {"texts": {}}}')
    with pytest.raises(DataError, match=r"b.json: the key 'patient_01' occurs twice in one JSON object"):
        read_json(path)
    two = tmp_path / "two.json"
    two.write_text('[{"a": 1}]\n[{"a": 1}]\n')
    with pytest.raises(DataError, match=r"Extra data at line 2, column 1\) \(two JSON documents concatenated\?\)"):
        read_json(two)


@pytest.mark.parametrize(("text", "words"), [
    ("id,a,a\n1,x,y\n", r"line 1: column 'a' appears twice \(columns 2 and 3\)"),
    ("id,a\n1,x\nid,a\n2,y\n", r"line 3: the header row again inside the data"),
    ("id,a\n1,x,extra\n", r"line 2: 3 cells where the header has 2"),
    ("id,a,b\n1,x\n", r"line 2: 2 cells where the header has 3"),
])
def test_csv_structure_problems(tmp_path, text, words):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=words):
        read_table(path)


def test_xlsx_with_two_columns_of_one_name_is_refused(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "QS"
    sheet.append(["File", "CHQ", "Summary", "Summary"])
    sheet.append(["1", "q", "first", "second"])
    book.save(tmp_path / "m.xlsx")
    with pytest.raises(DataError, match=r"m.xlsx, row 1: column 'Summary' appears twice \(columns 3 and 4\)"):
        read_table(tmp_path / "m.xlsx", sheet="QS")


@pytest.mark.parametrize("value", ["#N/A", " #VALUE! ", "#REF!", "#DIV/0!"])
def test_excel_error_values_are_refused(tmp_path, value):
    with pytest.raises(DataError, match=rf"f, line 2, field 'Summary': the Excel error value {value.strip()}"):
        check_text(tmp_path / "f", value, "line 2", "Summary")


@pytest.mark.parametrize("value", ["nan", "NaN", "null", "N/A", "<NA>"])
def test_missing_values_written_as_text_are_refused(tmp_path, value):
    with pytest.raises(DataError, match="a missing value written as text"):
        check_text(tmp_path / "f", value, "row 3", "Summary")


def test_texts_that_only_look_like_missing_values_are_kept(tmp_path):
    for value in ("None of the above.", "None", "Nanny reports fever", "NA+ 135 mmol/L"):
        assert check_text(tmp_path / "f", value, "row 1", "Answer") == value


def test_duplicate_ids_and_duplicate_content_are_refused(tmp_path):
    path = tmp_path / "f"
    with pytest.raises(DataError, match=r"f, line 4: pairID 'p1' occurs twice \(line 1 and line 4\)"):
        check_unique(path, [("line 1", "p1", ["a"]), ("line 2", "p2", ["b"]), ("line 4", "p1", ["c"])], "pairID")
    with pytest.raises(DataError, match=r"f, line 3: the same item as line 1 \(pairID 'p1'\) under another pairID 'p3'"):
        check_unique(path, [("line 1", "p1", ["a", "b"]), ("line 2", "p2", ["b"]), ("line 3", "p3", ["a", "b"])], "pairID")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40), min_size=1, max_size=8))
def test_any_unicode_text_survives_every_accepted_encoding(tmp_path_factory, texts):
    folder = tmp_path_factory.mktemp("enc")
    # ensure_ascii=False: the characters themselves go into the file (json escapes only quotes,
    # backslashes and control characters), so each codec's bytes of them are what is decoded
    body = "".join(json.dumps({"t": t}, ensure_ascii=False) + "\n" for t in texts)
    assert all(c in body for t in texts for c in t if ord(c) > 0x7F)  # as themselves, not as \\u escapes
    for codec in ("utf-8", "utf-8-sig", "utf-16"):
        path = folder / codec
        path.write_bytes(body.encode(codec))
        assert [row["t"] for _, row in read_jsonl(path)] == texts
        assert "".join(line for _, line in text_lines(path)) == body
