"""MeQSum, Problem Summary and MeDiSumQA: loaders in the real formats, prompts, preprocessing."""

import csv
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook

from medgate.core.errors import DataError
from medgate.core.types import Sample
from medgate.tasks import medisumqa, meqsum, problem_summary
from tests.conftest import FIXTURES


def write_xlsx(path, rows, sheet="QS"):
    book = Workbook()
    ws = book.active
    ws.title = sheet
    for row in rows:
        ws.append(row)
    book.save(path)


def write_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


@pytest.mark.parametrize("task", [meqsum, problem_summary, medisumqa])
def test_fixtures_load_with_enough_items(task):
    samples = task.load_samples(FIXTURES / task.TASK.filename)
    assert len(samples) >= 20 + task.TASK.fewshot
    assert len({s.id for s in samples}) == len(samples) and all(s.reference.strip() for s in samples)


def test_meqsum_reads_sheet_qs_and_the_same_columns_from_csv(tmp_path):
    rows = [["File", "CHQ", "Summary"], ["f1", "My knee hurts, what now?", "What treats knee pain?"]]
    write_xlsx(tmp_path / "a.xlsx", rows)
    write_csv(tmp_path / "a.csv", rows)
    for path in (tmp_path / "a.xlsx", tmp_path / "a.csv"):
        (sample,) = meqsum.load_samples(path)
        assert (sample.id, sample.fields["question"], sample.reference) == ("f1", "My knee hurts, what now?", "What treats knee pain?")


def test_meqsum_errors(tmp_path):
    write_xlsx(tmp_path / "wrong_sheet.xlsx", [["File", "CHQ", "Summary"], ["f", "q", "s"]], sheet="Sheet1")
    with pytest.raises(DataError, match=r"wrong_sheet.xlsx: no sheet 'QS' \(sheets: Sheet1\)"):
        meqsum.load_samples(tmp_path / "wrong_sheet.xlsx")
    write_xlsx(tmp_path / "cols.xlsx", [["File", "Question", "Summary"], ["f", "q", "s"]])
    with pytest.raises(DataError, match=r"missing column\(s\) 'CHQ'"):
        meqsum.load_samples(tmp_path / "cols.xlsx")
    write_xlsx(tmp_path / "empty.xlsx", [["File", "CHQ", "Summary"], ["f1", "q", "s"], ["f2", "q", None]])
    with pytest.raises(DataError, match=r"empty.xlsx, row 3, field 'Summary': empty value"):
        meqsum.load_samples(tmp_path / "empty.xlsx")
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not an xlsx workbook"):
        meqsum.load_samples(tmp_path / "broken.xlsx")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("pneumonia; COPD exacerbation", "pneumonia,  COPD exacerbation"),
        ("pneumonia;COPD;", "pneumonia, COPD"),  # the trailing ';' goes first (the reference's intent)
        ("sepsis ;  ", "sepsis"),
        ("single problem", "single problem"),
    ],
)
def test_problem_summary_cleaning(raw, clean):
    assert problem_summary.clean_summary(raw) == clean


@given(st.text())
def test_problem_summary_cleaning_is_total_and_leaves_no_semicolons(text):
    cleaned = problem_summary.clean_summary(text)
    assert ";" not in cleaned and not cleaned.endswith(", ")


def test_problem_summary_accepts_test_and_train_column_names(tmp_path):
    write_csv(tmp_path / "test.csv", [["File ID", "Subjectives", "Objectives", "Assessment", "Summary"],
                                      ["n1", "cough", "T 38", "CAP", "pneumonia;"]])
    write_csv(tmp_path / "train.csv", [["File ID", "Subjective Sections", "Objective Sections", "Assessment", "Summary"],
                                       ["n1", "cough", "T 38", "CAP", "pneumonia;"]])
    a, b = (problem_summary.load_samples(tmp_path / f) for f in ("test.csv", "train.csv"))
    assert a == b and a[0].reference == "pneumonia"
    # the reference's values (for its prompts) keep the trailing ';', turned into ', ' as it does
    assert a[0].fields == {"subjective": "cough", "assessment": "CAP",
                           "raw": {"Subjectives": "cough", "Assessment": "CAP", "Summary": "pneumonia, "}}


def test_problem_summary_empty_summary_is_a_data_error(tmp_path):
    write_csv(tmp_path / "x.csv", [["File ID", "Subjectives", "Objectives", "Assessment", "Summary"],
                                   ["n1", "s", "o", "a", "ok"], ["n2", "s", "o", "a", " ; "]])
    with pytest.raises(DataError, match=r"x.csv, line 3 \(n2\), field 'Summary': empty reference summary"):
        problem_summary.load_samples(tmp_path / "x.csv")


def test_problem_summary_prompt_holds_subjective_blank_line_assessment_and_instruction():
    sample = Sample(id="n", fields={"subjective": "SUBJ", "assessment": "ASSESS"}, reference="x")
    user = problem_summary.build_prompt(sample, [])[-1]["content"]
    assert "SUBJ\n\nASSESS" in user and user.rstrip().endswith("List the diagnoses and problems only.")


def test_medisumqa_loader_and_errors(tmp_path):
    path = tmp_path / "qa.json"
    path.write_text(json.dumps([{"discharge_summary": "d", "Question": "q?", "Answer": "a"}]))
    (sample,) = medisumqa.load_samples(path)
    assert sample.reference == "a" and "Question: q?" in medisumqa.build_prompt(sample, [])[-1]["content"]
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(DataError, match="expected a JSON list"):
        medisumqa.load_samples(path)
    path.write_text(json.dumps([{"discharge_summary": "d", "Question": "q?", "Answer": 5}]))
    with pytest.raises(DataError, match=r"item 0, field 'Answer': expected text, got a number 5"):
        medisumqa.load_samples(path)
    path.write_text('[{"discharge_summary": "d",')
    with pytest.raises(DataError, match=r"qa.json: not valid JSON"):
        medisumqa.load_samples(path)


@pytest.mark.parametrize("task", [meqsum, problem_summary, medisumqa])
def test_prompts_are_system_then_shot_pairs_then_item(task):
    samples = task.load_samples(FIXTURES / task.TASK.filename)
    chat = task.build_prompt(samples[0], samples[1:4])
    assert [m["role"] for m in chat] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert [chat[i]["content"] for i in (2, 4, 6)] == [s.reference for s in samples[1:4]]
