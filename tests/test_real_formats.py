"""--data-dir with small files in the real formats runs all six tasks unchanged (fake engine)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.conftest import REPO, outcomes, write_models

REPLY = "The correct answer is A: first. ICD-10 Codes: I10, J18.9. ENTAILMENT"


def make_real_files(folder: Path) -> None:
    folder.mkdir()
    with (folder / "mli_test_v1.jsonl").open("w") as f:
        for i, label in enumerate(["entailment", "neutral", "contradiction"] * 2):
            f.write(json.dumps({"sentence1": f"Premise {i}.", "sentence2": f"Hypothesis {i}.", "gold_label": label, "pairID": f"p{i}"}) + "\n")
    book = Workbook()
    sheet = book.active
    sheet.title = "QS"
    sheet.append(["File", "CHQ", "Summary"])
    for i in range(5):
        sheet.append([f"q{i}", f"Long question number {i} about my aching back?", f"What treats back pain {i}?"])
    book.save(folder / "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx")
    with (folder / "BioNLP2023-1A-Test.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["File ID", "Subjectives", "Objectives", "Assessment", "Summary"])
        for i in range(5):
            writer.writerow([f"n{i}", f"Cough {i} days.", "T 38.2", "Pneumonia.", "pneumonia; hypoxia;"])
    (folder / "MeDiSumQA.json").write_text(json.dumps(
        [{"discharge_summary": f"Summary {i}: admitted with pneumonia.", "Question": "Why?", "Answer": "Pneumonia."} for i in range(3)]))
    (folder / "MeDiSumCode.json").write_text(json.dumps(
        [{"hadm_id": i, "text": f"Letter {i}: pneumonia and hypertension.",
          "icd_codes": [{"code": "J189", "description": "Pneumonia"}, {"code": "I10", "description": "HTN"}]} for i in range(3)]))
    bench = {}
    for p in range(6):  # tasks 2 and 3 draw 10 documents of other patients: 5 others x 2 documents
        text = f"Intro sentence of patient {p}. The diagnosis was pneumonia. Closing sentence."
        start = text.index("pneumonia") / len(text)
        bench[f"pat{p}"] = {
            "name": "x", "birthday": "2000-01-01", "diagnosis": "y",
            "texts": {"text_0": text, "text_1": f"Another document about the stay of patient {p}."},
            "questions": [{"No": 0, "question": "What was the diagnosis?", "answer_a": "pneumonia", "answer_b": "asthma",
                           "answer_c": "sepsis", "answer_d": "stroke", "answer_e": "gout", "correct": "pneumonia",
                           "answer_location": {"text_0": {"start": [start], "end": [start + 0.15]}}}],
        }
    (folder / "benchmark_v5.json").write_text(json.dumps(bench))


def test_all_six_tasks_run_on_real_format_files(pytester: pytest.Pytester, tmp_path):
    data = tmp_path / "data"
    make_real_files(data)
    models = write_models(tmp_path / "models.toml", f"""
        [models.fake]
        path = "."
        backend = "fake"
        fake_reply = "{REPLY}"
        [models.fake.thresholds]
        problem_summary = {{ umls_f1 = 0.1, rouge1 = 0.0 }}
        medisumcode = {{ exact_r = 0.5 }}
        """)
    suite = pytester.mkdir("tests_medical")
    for test_file in (REPO / "tests_medical").glob("test_*.py"):
        (suite / test_file.name).write_text(test_file.read_text())
    result = pytester.runpytest_subprocess(
        "tests_medical", "--model", "fake", f"--models-file={models}", f"--data-dir={data}",
        f"--reports-dir={pytester.path / 'reports'}", "-p", "no:cacheprovider", "-rs",
    )
    parsed = result.parseoutcomes()  # pytest's keys are plural: "errors", "passed", "failed"
    assert "errors" not in parsed and "failed" not in parsed and parsed["passed"] >= 2, parsed
    found = {(o["task"], o["metric"]): o for o in outcomes(pytester.path / "reports")}
    assert {task for task, _ in found} == {"mednli", "meqsum", "problem_summary", "medisumqa", "medisumcode", "longhealth"}
    # every item of each file was scored (after the few-shot examples)
    n = {task: o["provenance"]["n_items"] for (task, _), o in found.items()}
    assert n == {"mednli": 3, "meqsum": 2, "problem_summary": 2, "medisumqa": 2, "medisumcode": 2, "longhealth": 90}
    # scores follow from the constant reply: ICD: predicted [I10, J189] vs gold [J189, I10]
    assert found[("medisumcode", "exact_r")]["value"] == 1.0 and found[("medisumcode", "exact_r")]["status"] == "pass"
    # LongHealth: "A" is right for task 1 and 2 prompts (gold pneumonia is option A), wrong for task 3 (gold F)
    assert found[("longhealth", "accuracy_task1")]["value"] == 1.0
    assert found[("longhealth", "accuracy_task3")]["value"] == 0.0
    packing = found[("longhealth", "accuracy_task1")]["provenance"]["item_totals"]
    assert packing["prompts"] == 90 and packing["answer_span_cut"] == 0
    # a threshold on a metric that cannot be computed is skipped with the reason, never passed
    umls = found[("problem_summary", "umls_f1")]
    assert umls["status"] == "not_computed"
    assert "problem_summary umls_f1: not computed: scispaCy is not installed" in result.stdout.str()
    assert found[("problem_summary", "rouge1")]["status"] == "pass"
    assert "all-MiniLM-L6-v2" in found[("meqsum", "bertscore_f1")]["provenance"]["notes"]["bertscore_encoder"]
    summary = (pytester.path / "reports" / "summary.md").read_text()
    assert "longhealth packing" in summary and "bertscore" in summary.lower()
