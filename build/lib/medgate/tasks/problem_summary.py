"""Problem Summary (BioNLP 2023 shared task 1A): list a patient's diagnoses and problems from
the subjective and assessment sections of a progress note.

Protocol (PROTOCOL.md): CSV with ``File ID``, ``Subjectives``, ``Objectives``, ``Assessment``,
``Summary`` (the train file says ``Subjective Sections`` and ``Objective Sections``), 3 few-shot
examples, 512 new tokens, ROUGE, BERTScore, UMLS concept F1. Reference summaries separate items
with ';', which becomes ', '. Fix: a trailing ';' is dropped first (the reference meant to and
did not), and an empty summary is a data error. The reference's prompts get the cells unstripped
and its few-shot answers the summary with only ';' replaced, as the reference writes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from medgate.core.errors import DataError
from medgate.core.types import BatchScores, Chat, Sample, ScoringConfig
from medgate.metrics.text import score_texts, text_metrics
from medgate.tasks.base import TaskSpec, fewshot_chat, fewshot_script
from medgate.tasks.files import check_text, check_unique, read_table, require_columns

# test-file name -> train-file name of the same column
_ALIASES = {"Subjectives": "Subjective Sections", "Objectives": "Objective Sections"}
_DELIMITER = "-" * 10 + " PROGRESS NOTE " + "-" * 10
_END = "-" * 35

SYSTEM = (
    "You are a physician writing the problem list of a hospital progress note. Given the "
    "subjective and assessment sections, name the patient's active diagnoses and problems, "
    "separated by commas. Do not explain and do not add treatment plans."
)


def clean_summary(text: str) -> str:
    """Drop a trailing ';', then turn each ';' into ', ' as the reference does."""
    stripped = text.strip()
    if stripped.endswith(";"):
        stripped = stripped[:-1].rstrip()
    return stripped.replace(";", ", ")


def load_samples(path: Path) -> list[Sample]:
    rows = read_table(path)
    if rows:
        for column, alias in _ALIASES.items():
            if column in rows[0][1] and alias in rows[0][1]:
                raise DataError(path, f"both {column!r} (test file) and {alias!r} (train file) columns: which one to "
                                      "read is ambiguous", item="line 1")
            if alias in rows[0][1]:
                rows = [(n, {**row, column: row[alias]}) for n, row in rows]
    require_columns(path, rows, ("File ID", "Subjectives", "Assessment", "Summary"))
    samples, seen = [], []
    for number, row in rows:
        item = f"line {number}"
        file_id = check_text(path, row["File ID"], item, "File ID").strip()
        where = f"{item} ({file_id})"
        if not str(row["Summary"]).replace(";", "").strip():
            raise DataError(path, "empty reference summary", item=where, field="Summary")
        summary = clean_summary(check_text(path, row["Summary"], where, "Summary"))
        subjective, assessment = (str(row[c]).strip() for c in ("Subjectives", "Assessment"))
        if not subjective and not assessment:
            raise DataError(path, "both Subjectives and Assessment are empty", item=where, field="Assessment")
        for column, value in (("Subjectives", subjective), ("Assessment", assessment)):
            if value:  # one of the two may be empty; what is there must be text
                check_text(path, value, where, column)
        raw = {"Subjectives": str(row["Subjectives"]), "Assessment": str(row["Assessment"]),
               "Summary": str(row["Summary"]).replace(";", ", ")}  # the reference's values, for its prompts
        samples.append(Sample(id=file_id, fields={"subjective": subjective, "assessment": assessment, "raw": raw},
                              reference=summary))
        seen.append((item, file_id, [subjective, assessment, summary]))
    if not samples:
        raise DataError(path, "no items")
    check_unique(path, seen, "File ID")
    return samples


def _user_text(sample: Sample) -> str:
    note = f"{sample.fields['subjective']}\n\n{sample.fields['assessment']}"
    return f"{_DELIMITER}\n{note}\n{_END}\nList the diagnoses and problems only."


def build_prompt(sample: Sample, shots: Sequence[Sample]) -> Chat:
    return fewshot_chat(SYSTEM, _user_text, sample, shots)


def score_batch(outputs: Sequence[str], samples: Sequence[Sample], scoring: ScoringConfig) -> BatchScores:
    return score_texts(outputs, [s.reference for s in samples], scoring, with_umls=True)


TASK = TaskSpec(
    name="problem_summary",
    title="Problem Summary",
    filename="BioNLP2023-1A-Test.csv",
    alt_filenames=("BioNLP2023-1A-Train.csv",),
    fewshot=3,
    max_new_tokens=512,
    metrics=text_metrics(with_umls=True),
    load_samples=load_samples,
    build_prompt=build_prompt,
    score_batch=score_batch,
    prompt_version="problem_summary-1",
    echo=lambda sample: f"{sample.fields['subjective']}\n\n{sample.fields['assessment']}",  # the note's sections
    reference=fewshot_script("eval_ProblemSummary.py", user=("Subjectives", "Assessment"), answer=("Summary",),
                             values=lambda s: s.fields["raw"]),
)
