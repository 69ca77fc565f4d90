"""MeQSum: summarise a consumer health question into one short question.

Protocol (PROTOCOL.md): sheet ``QS`` of the xlsx (File, CHQ, Summary), 3 few-shot examples,
512 new tokens, ROUGE-1/2/L and BERTScore P/R/F1; summaries are used as they are (medgate strips
surrounding whitespace; the reference's prompts get the cells unstripped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from medgate.core.errors import DataError
from medgate.core.types import BatchScores, Chat, Sample, ScoringConfig
from medgate.metrics.text import score_texts, text_metrics
from medgate.tasks.base import TaskSpec, fewshot_chat, fewshot_script
from medgate.tasks.files import check_text, check_unique, read_table, require_columns

SHEET = "QS"
COLUMNS = ("File", "CHQ", "Summary")

SYSTEM = (
    "You are a medical librarian. Patients write long, informal questions; you rewrite each "
    "one as a single short question that keeps only what the person needs answered. "
    "Reply with that one question and nothing else."
)
_DELIMITER = "=" * 20


def load_samples(path: Path) -> list[Sample]:
    """The xlsx sheet QS, or a CSV with the same columns."""
    rows = read_table(path, sheet=SHEET)
    require_columns(path, rows, COLUMNS)
    samples, seen = [], []
    line = "line" if path.suffix.lower() == ".csv" else "row"
    for number, row in rows:
        item = f"{line} {number}"
        texts = {column: check_text(path, _cell(row.get(column)) if column == "File" else row.get(column), item,
                                    column).strip() for column in COLUMNS}
        raw = {"CHQ": row["CHQ"], "Summary": row["Summary"]}  # unstripped, for the reference's prompts
        samples.append(Sample(id=texts["File"], fields={"question": texts["CHQ"], "raw": raw},
                              reference=texts["Summary"]))
        seen.append((item, texts["File"], [texts["CHQ"], texts["Summary"]]))
    if not samples:
        raise DataError(path, "no items")
    check_unique(path, seen, "File")
    return samples


def _cell(value: object) -> object:
    """A spreadsheet's File column may hold numbers (1.0 for file 1): an id, as text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _user_text(sample: Sample) -> str:
    return f"Consumer health question:\n{_DELIMITER}\n{sample.fields['question']}\n{_DELIMITER}\nWrite it as one short question."


def build_prompt(sample: Sample, shots: Sequence[Sample]) -> Chat:
    return fewshot_chat(SYSTEM, _user_text, sample, shots)


def score_batch(outputs: Sequence[str], samples: Sequence[Sample], scoring: ScoringConfig) -> BatchScores:
    return score_texts(outputs, [s.reference for s in samples], scoring, with_umls=False)


TASK = TaskSpec(
    name="meqsum",
    title="MeQSum",
    filename="MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx",
    alt_filenames=("MeQSum_ACL2019_BenAbacha_Demner-Fushman.csv",),
    fewshot=3,
    max_new_tokens=512,
    metrics=text_metrics(with_umls=False),
    load_samples=load_samples,
    build_prompt=build_prompt,
    score_batch=score_batch,
    prompt_version="meqsum-1",
    echo=lambda sample: str(sample.fields["question"]),  # the consumer's question as its own summary
    reference=fewshot_script("eval_meqsum.py", user=("CHQ",), answer=("Summary",), values=lambda s: s.fields["raw"]),
)
