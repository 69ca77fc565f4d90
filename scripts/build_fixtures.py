"""Write the shipped synthetic data (fixtures/) in the real files' formats and names.

The texts live in fixtures/source/ as Python data, reviewable as text; this script renders
them to xlsx, CSV and JSON. Run it after editing a source file: python scripts/build_fixtures.py
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import random
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
sys.path.insert(0, str(FIXTURES / "source"))

from consumer_questions import QUESTIONS  # noqa: E402
from longhealth_patients import PATIENTS  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402


def discharge_summary(s: dict) -> str:
    diagnoses = "; ".join(description for _, description in s["codes"])
    return (
        "DISCHARGE SUMMARY\n"
        f"Chief complaint: {s['complaint']}\n"
        f"History of present illness: The patient is a {s['age']}-year-old {s['sex']} with {s['history']} "
        f"who presented with {s['presentation']}.\n"
        f"Hospital course: {s['course']}\n"
        f"Discharge diagnoses: {diagnoses}\n"
        f"Discharge medications: {s['meds']}\n"
        f"Follow-up: {s['followup']}"
    )


def write_meqsum() -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "QS"
    sheet.append(["File", "CHQ", "Summary"])
    for number, (question, summary) in enumerate(QUESTIONS, start=1):
        sheet.append([f"synth-chq-{number:03d}", question, summary])
    fixed = datetime.datetime(2026, 1, 1)
    book.properties.created = book.properties.modified = fixed  # stable bytes, stable dataset hash
    book.save(FIXTURES / "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx")


def write_problem_summary() -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["File ID", "Subjectives", "Objectives", "Assessment", "Summary"])
    for number, s in enumerate(SCENARIOS, start=1):
        summary = "; ".join(s["problems"])
        if number % 4 == 0:
            summary += ";"  # real references sometimes end with ';' (dropped by the loader)
        writer.writerow([f"synth-note-{number:03d}", s["subjective"], s["objective"], s["assessment"], summary])
    (FIXTURES / "BioNLP2023-1A-Test.csv").write_text(out.getvalue(), encoding="utf-8")


def write_medisum() -> None:
    qa, codes = [], []
    for number, s in enumerate(SCENARIOS, start=1):
        text = discharge_summary(s)
        question, answer = s["qa"]
        qa.append({"id": f"synth-qa-{number:03d}", "discharge_summary": text, "Question": question, "Answer": answer})
        codes.append({"hadm_id": 29000000 + number, "text": text,
                      "icd_codes": [{"code": c, "description": d} for c, d in s["codes"]]})
    (FIXTURES / "MeDiSumQA.json").write_text(json.dumps(qa, indent=1) + "\n", encoding="utf-8")
    (FIXTURES / "MeDiSumCode.json").write_text(json.dumps(codes, indent=1) + "\n", encoding="utf-8")


def write_longhealth() -> None:
    rng = random.Random(7)
    bench = {}
    for pid, p in PATIENTS.items():
        texts = {f"text_{i}": t for i, t in enumerate(p["texts"])}
        questions = []
        for number, q in enumerate(p["questions"]):
            doc, phrase = q["where"]
            text = p["texts"][doc]
            start = text.index(phrase)  # the answer phrase must stand in its document
            options = [q["correct"], *q["wrong"]]
            rng.shuffle(options)
            questions.append({
                "No": number, "question": q["question"],
                **{f"answer_{letter}": option for letter, option in zip("abcde", options)},
                "correct": q["correct"],
                "answer_location": {f"text_{doc}": {"start": [round(start / len(text), 4)],
                                                    "end": [round((start + len(phrase)) / len(text), 4)]}},
            })
        bench[pid] = {"name": p["name"], "birthday": p["birthday"], "diagnosis": p["diagnosis"],
                      "texts": texts, "questions": questions}
    (FIXTURES / "benchmark_v5.json").write_text(json.dumps(bench, indent=1) + "\n", encoding="utf-8")


def write_manifest() -> None:
    """The package's list of shipped synthetic files, by content (what "synthetic" means)."""
    sys.path.insert(0, str(FIXTURES.parent / "src"))
    from medgate.core.synthetic import MANIFEST, manifest_text

    MANIFEST.write_text(manifest_text([p for p in FIXTURES.iterdir() if p.is_file()]), encoding="utf-8")


if __name__ == "__main__":
    write_meqsum()
    write_problem_summary()
    write_medisum()
    write_longhealth()
    write_manifest()
    print("fixtures written to", FIXTURES)
