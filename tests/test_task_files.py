"""Task files (``*.task.toml``): the faithful re-expression of MeQSum and MedNLI, the metric
catalogue, the follow-up example, and a corpus of broken task files that each give one clear
error naming the task file, the key and its line (and, for data, the row and column)."""

from __future__ import annotations

import codecs
import json
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook

import medgate.metrics.bertscore as bertscore_module
from medgate.core.errors import ConfigError, DataError, MedgateError, MissingDataFile
from medgate.core.types import ScoringConfig
from medgate.metrics.exact import exact_match, normalise
from medgate.metrics.labels import first_label, label_scores
from medgate.tasks import mednli, meqsum
from medgate.tasks.base import split_fewshot
from medgate.tasks.files import read_table
from medgate.tasks.taskfile import check_task_file, is_task_file, load_task_file, read_task_file
from medgate.tasks.taskfile_metrics import KINDS, extract_answer
from medgate.tasks.taskfile_toml import dotted, key_lines, task_file_schema
from tests.conftest import REPO

EXAMPLES = REPO / "examples" / "task-files"


# --- faithfulness: the built-in MeQSum and MedNLI as task files ---------------------------------

def _plans(file_task, module):
    ours = file_task.load_samples(file_task.path)
    theirs = module.load_samples(file_task.path)
    return split_fewshot(ours, file_task.fewshot), split_fewshot(theirs, module.TASK.fewshot)


def _fake_compute(predictions, references, encoder):
    """A deterministic stand-in for the encoder (loading MiniLM takes ~25 s on CPU): both tasks
    still go through medgate's bertscore(), its empty-answer rule included."""
    return [{"bertscore_p": len(p) / 1000, "bertscore_r": len(r) / 1000, "bertscore_f1": len(set(p) & set(r)) / 100}
            for p, r in zip(predictions, references)]


@pytest.mark.parametrize(("name", "module"), [("meqsum", meqsum), ("mednli", mednli)])
def test_task_file_builds_byte_identical_chats_to_the_built_in_task(name, module):
    task = load_task_file(EXAMPLES / f"{name}.task.toml")
    assert task.name == f"{name}_file" and task.path == REPO / "fixtures" / module.TASK.filename
    assert (task.fewshot, task.max_new_tokens, task.filename) == (module.TASK.fewshot, module.TASK.max_new_tokens,
                                                                  module.TASK.filename)
    (shots, items), (their_shots, their_items) = _plans(task, module)
    assert [s.id for s in shots + items] == [s.id for s in their_shots + their_items]
    ours = json.dumps([task.build_prompt(s, shots) for s in items], ensure_ascii=False)
    theirs = json.dumps([module.build_prompt(s, their_shots) for s in their_items], ensure_ascii=False)
    assert ours.encode("utf-8") == theirs.encode("utf-8") and len(items) >= 20


@pytest.mark.parametrize(("name", "module"), [("meqsum", meqsum), ("mednli", mednli)])
def test_task_file_scores_every_item_as_the_built_in_task(name, module, monkeypatch):
    monkeypatch.setattr(bertscore_module, "_compute", _fake_compute)
    task = load_task_file(EXAMPLES / f"{name}.task.toml")
    (_, items), (_, their_items) = _plans(task, module)
    references = [str(s.reference) for s in items]
    shuffled = references[1:] + references[:1]
    outputs = [*references, *(r.upper() for r in references), *([""] * len(items)), *shuffled]
    if name == "mednli":  # the reference rule's corners: a negation, a repeated label, a sentence
        outputs += ["NOT ENTAILMENT", "neutral, neutral", "The answer is CONTRADICTION."] * (len(items) // 3)
    n = len(outputs) // len(items) + 1
    ours = task.score_all(outputs, (items * n)[: len(outputs)], ScoringConfig())
    theirs = module.TASK.score_all(outputs, (their_items * n)[: len(outputs)], ScoringConfig())
    assert ours.per_item == theirs.per_item
    assert list(task.metrics) == list(module.TASK.metrics) and dict(task.metrics) == dict(module.TASK.metrics)
    assert {s["accuracy" if name == "mednli" else "rougeL"] for s in ours.per_item} >= {0.0, 1.0}


# --- the follow-up example ----------------------------------------------------------------------

def test_followup_example_reads_forty_synthetic_cases_and_scores_its_own_answers_fully():
    task = check_task_file(EXAMPLES / "followup.task.toml")
    samples = task.load_samples(task.path)
    assert len(samples) == 40 and all(s.fields["columns"]["note"].startswith("SYNTHETIC CASE") for s in samples)
    shots, items = split_fewshot(samples, task.fewshot)
    chat = task.build_prompt(items[0], shots)
    assert chat[2] == {"role": "assistant", "content": f"Follow-up: {shots[0].reference}"}
    outputs = [f"Follow-up: {s.reference.upper()}.\nAnything else?" for s in items]
    scores = task.score_all(outputs, items, ScoringConfig()).per_item
    assert all(s == {"exact_match": 1.0, "set_p": 1.0, "set_r": 1.0, "set_f1": 1.0} for s in scores)
    # "cardiology; 2 weeks" answered "cardiology; 3 weeks": one of two parts
    half = task.score_all(["Follow-up: cardiology; 3 weeks"], [next(s for s in samples if s.id == "synth-fu-001")],
                          ScoringConfig()).per_item[0]
    assert half == {"exact_match": 0.0, "set_p": 0.5, "set_r": 0.5, "set_f1": 0.5}


# --- the metric catalogue -----------------------------------------------------------------------

def test_first_label_rule_takes_the_earliest_whole_word_label_and_the_longest_at_one_place():
    labels = ("ENTAILMENT", "NOT ENTAILMENT", "NEUTRAL")
    assert first_label("neutral, or maybe entailment", labels) == "NEUTRAL"
    assert first_label("Not entailment.", labels) == "NOT ENTAILMENT"
    assert first_label("NEUTRALITY is not a label", labels) is None
    assert label_scores("Answer: entailment", "ENTAILMENT", labels, rule="first") == {"accuracy": 1.0,
                                                                                     "no_label_rate": 0.0}
    assert label_scores("nothing", "ENTAILMENT", labels, rule="first") == {"accuracy": 0.0, "no_label_rate": 1.0}


def test_mednli_rule_is_the_reference_rule():
    labels = ("ENTAILMENT", "NEUTRAL", "CONTRADICTION")
    assert label_scores("NOT ENTAILMENT", "entailment", labels) == {"accuracy": 1.0, "no_label_rate": 0.0}
    assert label_scores("neutral neutral", "neutral", labels) == {"accuracy": 0.0, "no_label_rate": 0.0}
    assert label_scores("", "neutral", labels) == {"accuracy": 0.0, "no_label_rate": 1.0}


@given(st.text(max_size=40), st.booleans(), st.booleans(), st.booleans())
def test_normalise_is_idempotent_and_exact_match_reflexive(text, case, space, punctuation):
    options = {"ignore_case": case, "ignore_whitespace": space, "ignore_punctuation": punctuation}
    once = normalise(text, **options)
    assert normalise(once, **options) == once and exact_match(text, text, **options) == 1.0


def test_exact_match_options():
    assert exact_match("  Six   weeks ", "six weeks") == 1.0
    assert exact_match("Six weeks", "six weeks", ignore_case=False) == 0.0
    assert exact_match("six weeks.", "six weeks") == 0.0
    assert exact_match("six weeks.", "six weeks", ignore_punctuation=True) == 1.0
    assert exact_match("six  weeks", "six weeks", ignore_whitespace=False) == 0.0


@pytest.mark.parametrize(("pattern", "output", "answer"), [
    (r"Answer: (\w+)", "So. Answer: yes, indeed", "yes"),
    (r"(?P<pre>x)?Answer: (?P<answer>\w+)", "Answer: no", "no"),
    (r"\d+ weeks", "in 6 weeks or 8 weeks", "6 weeks"),
    (r"Answer: (\w+)", "no answer here", ""),
])
def test_extract_takes_the_answer_group_else_the_first_group_else_the_match(pattern, output, answer):
    assert extract_answer(re.compile(pattern), output) == answer


def _write_task(tmp_path: Path, body: str, data: dict[str, bytes | str]) -> Path:
    for name, content in data.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    path = tmp_path / "demo.task.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_icd10_metric_scores_as_medisumcode_and_set_metric_on_sets(tmp_path):
    path = _write_task(tmp_path, """
        name = "coding"
        max_new_tokens = 64
        [data]
        file = "codes.jsonl"
        reference = "codes"
        [prompt]
        system = "Code it."
        user = "{text}"
        [metrics.icd10]
        separator = ";"
        [metrics.set]
        separator = ";"
        ignore_case = false
        """, {"codes.jsonl": '{"text": "heart failure and diabetes", "codes": "I50.9; E11.9"}\n'})
    task = check_task_file(path)
    (sample,) = task.load_samples(task.path)
    assert sample.fields["gold"]["icd10"] == ["I509", "E119"]
    (scores,) = task.score_all(["I50.9; E11.65; J18.9"], [sample], ScoringConfig()).per_item
    assert (scores["exact_p"], scores["exact_r"]) == (pytest.approx(1 / 3), 0.5)  # I509 of I509, E1165, J189
    assert (scores["approx_p"], scores["approx_r"]) == (pytest.approx(2 / 3), 1.0)  # I50, E11 of I50, E11, J18
    assert (scores["set_p"], scores["set_r"]) == (pytest.approx(1 / 3), 0.5)  # "I50.9" matches; "E11.65" does not
    assert list(task.metrics) == ["exact_p", "exact_r", "exact_f1", "approx_p", "approx_r", "approx_f1", "valid_ratio",
                                  "set_p", "set_r", "set_f1"]


# --- reading and locating -----------------------------------------------------------------------

def test_key_lines_finds_tables_keys_and_dotted_keys_and_skips_multiline_strings():
    text = textwrap.dedent('''\
        name = "x"
        [prompt]
        user = """
        fake = 1
        """
        "odd key" = 2
        [metrics.set]
        separator = ";"
        data.file = "a.csv"
        ''')
    lines = key_lines(text)
    assert lines == {("name",): 1, ("prompt",): 2, ("prompt", "user"): 3, ("prompt", "odd key"): 6,
                     ("metrics", "set"): 7, ("metrics", "set", "separator"): 8, ("metrics", "set", "data", "file"): 9}
    assert dotted(("metrics", "label_accuracy", "labels", 2)) == "metrics.label_accuracy.labels[2]"
    assert dotted(("prompt", "odd key")) == 'prompt."odd key"'


def test_schema_ships_with_the_package_and_names_every_metric_kind():
    schema = task_file_schema()
    assert list(schema["properties"]["metrics"]["properties"]) == list(KINDS)
    from jsonschema import Draft7Validator

    Draft7Validator.check_schema(schema)
    assert 'tasks/taskfile.schema.json' in (REPO / "pyproject.toml").read_text()


def test_naming_rule():
    assert is_task_file(Path("tests_medical/followup.task.toml"))
    assert not is_task_file(Path("followup.toml")) and not is_task_file(Path(".task.toml"))


def test_bom_and_utf16_csv_read_like_plain_utf8(tmp_path):
    rows = "case_id,note,answer\nc1,Fièvre à 39 °C,yes\nc2,Toux,no\n"
    for name, data in {"bom": codecs.BOM_UTF8 + rows.encode(), "utf16": rows.encode("utf-16")}.items():
        path = _write_task(tmp_path, BASE, {"cases.csv": data})
        samples = load_task_file(path).load_samples(tmp_path / "cases.csv")
        read = [(s.id, s.fields["columns"]["note"]) for s in samples]
        assert read == [("c1", "Fièvre à 39 °C"), ("c2", "Toux")], name


def test_xlsx_numbers_read_as_text_and_the_data_dir_file_wins(tmp_path):
    _xlsx(tmp_path / "cases.xlsx", [["case_id", "note", "answer"], [1, "Fever", 6], [2.0, "Cough", 8.5]])
    body = BASE.replace('file = "cases.csv"', 'file = "cases.xlsx"')
    task = load_task_file(_write_task(tmp_path, body, {}))
    samples = task.load_samples(task.path)
    assert [(s.id, s.reference) for s in samples] == [("1", "6"), ("2", "8.5")]
    other = tmp_path / "data"
    other.mkdir()
    _xlsx(other / "cases.xlsx", [["case_id", "note", "answer"], ["a", "x", "y"], ["b", "z", "w"]])
    assert check_task_file(tmp_path / "demo.task.toml", data_dir=other).name == "demo"


def test_a_formula_without_a_stored_value_is_named_with_the_fix(tmp_path):
    _xlsx(tmp_path / "f.xlsx", [["id", "note"], ["a", '=UPPER("fever")'], ["b", "cough"]])
    with pytest.raises(DataError, match=r"f.xlsx, row 2, field 'note': a formula \(=UPPER\(\"fever\"\)\) whose value "
                                        r"was never stored.*save it, or export the values"):
        read_table(tmp_path / "f.xlsx")
    _xlsx(tmp_path / "g.xlsx", [["id", "note"], ["a", "=1+1"], [None, "=2+2"]])  # a row of formulas only
    with pytest.raises(DataError, match=r"g.xlsx, row 2, field 'note': a formula"):
        read_table(tmp_path / "g.xlsx")


def _xlsx(path: Path, rows: list[list], sheet: str = "Cases") -> Path:
    book = Workbook()
    book.active.title = sheet
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


# --- the corpus of broken task files ------------------------------------------------------------

BASE = """\
name = "demo"
title = "Demo"
max_new_tokens = 16

[data]
file = "cases.csv"
id = "case_id"
reference = "answer"

[prompt]
system = "Answer yes or no."
user = "Note: {note}"
fewshot = 1

[metrics.exact_match]
"""
CSV = "case_id,note,answer\nc1,Fever for two days,yes\nc2,Cough and wheeze,no\nc3,Rash on both legs,yes\n"
LABELS = '[metrics.label_accuracy]\nlabels = ["yes", "no"]\n'
F = r"demo\.task\.toml"
D = r"cases\.csv"


def _excel_book(rows: list[list], sheet: str = "Cases") -> bytes:
    import io

    book = Workbook()
    book.active.title = sheet
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


XLSX_BODY = BASE.replace('file = "cases.csv"', 'file = "cases.xlsx"\nsheet = "Cases"')
# (id, replacements in BASE, data files, the error's class, a pattern naming file, key and line or row)
BROKEN = [
    ("toml syntax", [('name = "demo"', 'name = "demo')], {}, ConfigError, rf"{F}:1: not valid TOML: .*column"),
    ("toml duplicate key", [("fewshot = 1", "fewshot = 1\nfewshot = 2")], {}, ConfigError,
     rf"{F}:14: not valid TOML"),
    ("missing data table", [('[data]\nfile = "cases.csv"\nid = "case_id"\nreference = "answer"\n', "")], {},
     ConfigError, rf"{F}: data: missing table \[data\]"),
    ("missing reference", [('reference = "answer"\n', "")], {}, ConfigError,
     rf"{F}:5: data.reference: missing \(required\)"),
    ("missing name", [('name = "demo"\n', "")], {}, ConfigError, rf"{F}: name: missing \(required\)"),
    ("unknown top-level key", [('title = "Demo"', 'title = "Demo"\nnmae = "x"')], {}, ConfigError,
     rf"{F}:3: nmae: unknown key 'nmae' \(known: name, title"),
    ("unknown prompt key", [("fewshot = 1", "fewshots = 1")], {}, ConfigError,
     rf"{F}:13: prompt.fewshots: unknown key 'fewshots' \(known here: system, user, answer, fewshot\)"),
    ("unknown metric", [("[metrics.exact_match]", "[metrics.rouge3]")], {}, ConfigError,
     rf"{F}:15: metrics.rouge3: unknown metric 'rouge3' \(known here: label_accuracy, exact_match, rouge"),
    ("unknown metric parameter", [("[metrics.exact_match]", "[metrics.exact_match]\nignore_cases = true")], {},
     ConfigError, rf"{F}:16: metrics.exact_match.ignore_cases: unknown key"),
    ("no metric", [("[metrics.exact_match]", "[metrics]")], {}, ConfigError, rf"{F}:15: metrics: no metric declared"),
    ("metrics as an array", [("[metrics.exact_match]", '[[metrics]]\nkind = "exact_match"')], {}, ConfigError,
     rf"{F}:15: metrics: expected a table, got a list"),
    ("wrong format name", [('file = "cases.csv"', 'file = "cases.csv"\nformat = "tsv"')], {}, ConfigError,
     rf"{F}:7: data.format: 'tsv' is not one of jsonl, csv, xlsx"),
    ("format against extension", [('file = "cases.csv"', 'file = "cases.csv"\nformat = "jsonl"')], {}, ConfigError,
     rf"{F}:7: data.format: 'jsonl', but the file cases.csv is named as csv"),
    ("no extension", [('file = "cases.csv"', 'file = "cases"')], {}, ConfigError,
     rf"{F}:6: data.file: cannot tell the format"),
    ("sheet on a csv", [('file = "cases.csv"', 'file = "cases.csv"\nsheet = "Cases"')], {}, ConfigError,
     rf"{F}:7: data.sheet: a sheet is read from an xlsx workbook only"),
    ("negative max_new_tokens", [("max_new_tokens = 16", "max_new_tokens = -1")], {}, ConfigError,
     rf"{F}:3: max_new_tokens: must be at least 1, got -1"),
    ("max_new_tokens as text", [("max_new_tokens = 16", 'max_new_tokens = "16"')], {}, ConfigError,
     rf"{F}:3: max_new_tokens: expected a whole number, got text '16'"),
    ("fewshot not whole", [("fewshot = 1", "fewshot = 1.5")], {}, ConfigError,
     rf"{F}:13: prompt.fewshot: expected a whole number, got a number 1.5"),
    ("bad task name", [('name = "demo"', 'name = "Demo task"')], {}, ConfigError,
     rf"{F}:1: name: 'Demo task' is not a task name"),
    ("labels empty", [("[metrics.exact_match]", "[metrics.label_accuracy]\nlabels = []")], {}, ConfigError,
     rf"{F}:16: metrics.label_accuracy.labels: must not be empty"),
    ("labels missing", [("[metrics.exact_match]", '[metrics.label_accuracy]\nrule = "first"')], {}, ConfigError,
     rf"{F}:15: metrics.label_accuracy.labels: missing \(required\)"),
    ("duplicate labels", [("[metrics.exact_match]", '[metrics.label_accuracy]\nlabels = ["yes", "no", "Yes"]')], {},
     ConfigError,
     rf"{F}:16: metrics.label_accuracy.labels: the label 'Yes' twice \(entries 1 and 3; case is ignored\)"),
    ("unknown label rule", [("[metrics.exact_match]", LABELS + 'rule = "last"')], {}, ConfigError,
     rf"{F}:17: metrics.label_accuracy.rule: 'last' is not one of first, mednli"),
    ("set without separator", [("[metrics.exact_match]", "[metrics.set]\nignore_case = true")], {}, ConfigError,
     rf"{F}:15: metrics.set.separator: missing \(required\)"),
    ("unknown rouge type", [("[metrics.exact_match]", '[metrics.rouge]\ntypes = ["rouge3"]')], {}, ConfigError,
     rf"{F}:16: metrics.rouge.types\[0\]: 'rouge3' is not one of rouge1, rouge2, rougeL"),
    ("regex does not compile", [("[metrics.exact_match]", '[metrics.exact_match]\nextract = "(unclosed"')], {},
     ConfigError, rf"{F}:16: metrics.exact_match.extract: not a valid regular expression \(missing \)"),
    ("empty placeholder", [('user = "Note: {note}"', 'user = "Note: {}"')], {}, ConfigError,
     rf"{F}:12: prompt.user: placeholder {{}} names no column"),
    ("unbalanced brace", [('user = "Note: {note}"', 'user = "Note: {note"')], {}, ConfigError,
     rf"{F}:12: prompt.user: .*write {{{{ and }}}} for literal braces"),
    ("unknown case spec", [('user = "Note: {note}"', 'user = "Note: {note:title}"')], {}, ConfigError,
     rf"{F}:12: prompt.user: placeholder {{note:title}}: after ':' only upper or lower"),
    ("no placeholder", [('user = "Note: {note}"', 'user = "Note"')], {}, ConfigError,
     rf"{F}:12: prompt.user: no {{column}} placeholder"),
    ("task file not utf-8", [('title = "Demo"', 'title = "D\udce9mo"')], {}, ConfigError,
     rf"{F}:2: not UTF-8 text \(byte 0xE9\)"),
    # the data
    ("placeholder not a column", [('user = "Note: {note}"', 'user = "Note: {notes}"')], {"cases.csv": CSV}, DataError,
     rf"{F}:12: prompt.user: no column 'notes' in cases.csv \(found in the header: case_id, note, answer\)"),
    ("answer placeholder not a column", [("fewshot = 1", 'fewshot = 1\nanswer = "{answer} ({why})"')],
     {"cases.csv": CSV}, DataError, rf"{F}:14: prompt.answer: no column 'why' in cases.csv"),
    ("reference column missing", [('reference = "answer"', 'reference = "answr"')], {"cases.csv": CSV}, DataError,
     rf"{F}:8: data.reference: no column 'answr' in cases.csv"),
    ("id column missing", [('id = "case_id"', 'id = "case"')], {"cases.csv": CSV}, DataError,
     rf"{F}:7: data.id: no column 'case' in cases.csv"),
    ("data file missing", [], {}, MissingDataFile, rf"{D}: data file not found \(task file .*{F}:6: data.file\)"),
    ("empty data file", [], {"cases.csv": b""}, DataError, rf"{D}: empty file \(task file .*{F}:6: data.file\)"),
    ("header only", [], {"cases.csv": "case_id,note,answer\n"}, DataError, rf"{D}: no items .*{F}:6: data.file"),
    ("fewshot larger than data", [("fewshot = 1", "fewshot = 5")], {"cases.csv": CSV}, DataError,
     rf"{F}:13: prompt.fewshot: 5 few-shot examples need at least 6 items; cases.csv holds 3"),
    ("windows-1252 csv", [], {"cases.csv": CSV.replace("Rash", "Ecz\u00e9ma").encode("cp1252")}, DataError,
     rf"{D}, line 4: not UTF-8 text: byte 0xE9 at byte offset \d+ .*\(task file .*{F}:6: data.file\)"),
    ("duplicate ids", [], {"cases.csv": CSV.replace("c3,", "c1,")}, DataError,
     rf"{D}, line 4: case_id 'c1' occurs twice \(line 2 and line 4\).*{F}:7: data.id"),
    ("duplicate prompts", [], {"cases.csv": CSV.replace("Rash on both legs", "Fever for two days")}, DataError,
     rf"{D}, line 4: the same item as line 2 .*{F}:7: data.id"),
    ("empty cell", [], {"cases.csv": CSV.replace("Cough and wheeze", "")}, DataError,
     rf"{D}, line 3, field 'note': empty value \(task file .*{F}:12: prompt.user\)"),
    ("short row", [], {"cases.csv": CSV.replace("c2,Cough and wheeze,no", "c2,Cough, and wheeze,no")}, DataError,
     rf"{D}, line 3: 4 cells where the header has 3 .*{F}:6: data.file"),
    ("reference not a label", [("[metrics.exact_match]", LABELS)], {"cases.csv": CSV.replace(",no\n", ",maybe\n")},
     DataError, rf"{D}, line 3, field 'answer': 'maybe' is not one of the labels yes, no \(task file .*{F}:15: "
                rf"metrics.label_accuracy\)"),
    ("icd-9 code", [("[metrics.exact_match]", "[metrics.icd10]")],
     {"cases.csv": CSV.replace(",yes\n", ",I50.9\n").replace(",no\n", ",428.0\n")},
     DataError, rf"{D}, line 3, field 'answer': '428.0' is not an ICD-10 code \(ICD-9\?.*{F}:15: metrics.icd10"),
    ("unknown sheet", [("sheet = \"Cases\"", "sheet = \"Sheet9\"")],
     {"cases.xlsx": _excel_book([["case_id", "note", "answer"], ["c1", "a", "b"], ["c2", "c", "d"]])}, DataError,
     r"cases\.xlsx: no sheet 'Sheet9' \(sheets: Cases\) .*" + rf"{F}:7: data.sheet"),
    ("excel error value", [],
     {"cases.xlsx": _excel_book([["case_id", "note", "answer"], ["c1", "#N/A", "b"], ["c2", "c", "d"]])}, DataError,
     r"cases\.xlsx, row 2, field 'note': the Excel error value #N/A .*" + rf"{F}:13: prompt.user"),
    ("formula never computed", [],
     {"cases.xlsx": _excel_book([["case_id", "note", "answer"], ["c1", "=A1", "b"], ["c2", "c", "d"]])}, DataError,
     r"cases\.xlsx, row 2, field 'note': a formula \(=A1\) whose value was never stored.*" + rf"{F}:6: data.file"),
    ("jsonl line without a column", [('file = "cases.csv"', 'file = "cases.jsonl"')],
     {"cases.jsonl": '{"case_id": "c1", "note": "a", "answer": "b"}\n{"case_id": "c2", "answer": "d"}\n'},
     DataError, rf"cases\.jsonl, line 2, field 'note': missing field \(task file .*{F}:12: prompt.user\)"),
    ("jsonl list where text belongs", [('file = "cases.csv"', 'file = "cases.jsonl"')],
     {"cases.jsonl": '{"case_id": "c1", "note": ["a"], "answer": "b"}\n'
                     '{"case_id": "c2", "note": "c", "answer": "d"}\n'},
     DataError, rf"cases\.jsonl, line 1, field 'note': expected text, got a list"),
]


@pytest.mark.parametrize(("replacements", "data", "error", "pattern"), [pytest.param(*case[1:], id=case[0])
                                                                        for case in BROKEN])
def test_a_broken_task_file_gives_one_clear_error(tmp_path, replacements, data, error, pattern):
    body = XLSX_BODY if any(name.endswith(".xlsx") for name in data) else BASE
    for old, new in replacements:
        assert old in body, old
        body = body.replace(old, new)
    path = tmp_path / "demo.task.toml"
    for name, content in data.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    path.write_bytes(body.encode("utf-8", "surrogateescape"))
    with pytest.raises(MedgateError) as info:
        check_task_file(path)
    message = str(info.value)
    assert type(info.value) is error, message
    assert re.search(pattern, message), message
    assert "\n" not in message and "Traceback" not in message and str(path) in message


def test_the_corpus_covers_at_least_25_cases_and_the_valid_base_loads(tmp_path):
    assert len(BROKEN) >= 25 and len({case[0] for case in BROKEN}) == len(BROKEN)
    path = _write_task(tmp_path, BASE, {"cases.csv": CSV})
    task = check_task_file(path)
    assert (task.name, task.title, task.metric_names, task.path) == ("demo", "Demo", ["exact_match"],
                                                                     tmp_path / "cases.csv")
    shots, items = split_fewshot(task.load_samples(task.path), 1)
    note = shots[0].fields["columns"]["note"]
    assert task.build_prompt(items[0], shots)[1:3] == [{"role": "user", "content": f"Note: {note}"},
                                                      {"role": "assistant", "content": shots[0].reference}]


def test_static_problems_are_found_before_the_data_is_read(tmp_path):
    # the data file is absent: an unknown key is still the error, not the missing file
    path = _write_task(tmp_path, BASE.replace("fewshot = 1", "fewshot = 1\ncolour = 1"), {})
    with pytest.raises(ConfigError, match=r"prompt.colour: unknown key"):
        read_task_file(path)
