"""MeDiSumQA: answer a question about a discharge summary.

Protocol (PROTOCOL.md): JSON list of {discharge_summary, Question, Answer}, 1 few-shot example,
512 new tokens, ROUGE, BERTScore, UMLS concept F1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from medgate.core.errors import DataError
from medgate.core.types import BatchScores, Chat, Sample, ScoringConfig
from medgate.metrics.text import score_texts, text_metrics
from medgate.tasks.base import TaskSpec, fewshot_chat, fewshot_script
from medgate.tasks.files import check_unique, read_json_list, require_text

SYSTEM = (
    "You are a physician answering a patient's question about their own hospital stay. Use "
    "only the discharge summary you are given and answer in one or two plain sentences."
)
_START, _END = "<<< DISCHARGE SUMMARY >>>", "<<< END OF DISCHARGE SUMMARY >>>"


def load_samples(path: Path) -> list[Sample]:
    samples, seen = [], []
    for index, row in read_json_list(path):
        summary = require_text(path, row, "discharge_summary", index)
        question = require_text(path, row, "Question", index)
        answer = require_text(path, row, "Answer", index)
        item_id = str(row.get("id", index))
        raw = {"discharge_summary": summary, "Question": question, "Answer": answer}  # for the reference's prompts
        fields = {"summary": summary, "question": question, "raw": raw}
        samples.append(Sample(id=item_id, fields=fields, reference=answer))
        seen.append((f"item {index}", item_id, [summary.strip(), question.strip(), answer.strip()]))
    if not samples:
        raise DataError(path, "no items")
    check_unique(path, seen, "id")
    return samples


def _user_text(sample: Sample) -> str:
    return f"{_START}\n{sample.fields['summary']}\n{_END}\nQuestion: {sample.fields['question']}\nAnswer briefly."


def build_prompt(sample: Sample, shots: Sequence[Sample]) -> Chat:
    return fewshot_chat(SYSTEM, _user_text, sample, shots)


def score_batch(outputs: Sequence[str], samples: Sequence[Sample], scoring: ScoringConfig) -> BatchScores:
    return score_texts(outputs, [s.reference for s in samples], scoring, with_umls=True)


TASK = TaskSpec(
    name="medisumqa",
    title="MeDiSumQA",
    filename="MeDiSumQA.json",
    fewshot=1,
    max_new_tokens=512,
    metrics=text_metrics(with_umls=True),
    load_samples=load_samples,
    build_prompt=build_prompt,
    score_batch=score_batch,
    prompt_version="medisumqa-1",
    echo=lambda sample: str(sample.fields["question"]),  # the question as its own answer
    reference=fewshot_script("eval_MeDiSumQA.py", user=("discharge_summary", "Question"), answer=("Answer",),
                             values=lambda s: s.fields["raw"]),
)
