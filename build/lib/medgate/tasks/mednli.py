"""MedNLI: natural language inference on pairs of sentences from clinical notes.

Protocol (PROTOCOL.md): 3 few-shot examples, 20 new tokens, accuracy. An output is correct when
the upper-cased gold label occurs exactly once in the upper-cased output; the reference rule is
kept as it is (so "NOT ENTAILMENT" counts as entailment and a repeated label scores 0). The share
of outputs that name no valid label is reported beside it. medgate's few-shot answers are the
upper-cased labels; with the reference's prompts they are the raw labels, as the reference writes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from medgate.core.errors import DataError
from medgate.core.types import Chat, MetricSpec, Sample
from medgate.metrics.labels import label_scores
from medgate.tasks.base import TaskSpec, fewshot_chat, fewshot_script
from medgate.tasks.files import check_unique, read_jsonl, require_text
from medgate.tasks.trivial import most_frequent

LABELS = ("ENTAILMENT", "NEUTRAL", "CONTRADICTION")

SYSTEM = (
    "You are a clinician reading two statements taken from a patient's record. "
    "Decide how SENTENCE_2 relates to SENTENCE_1. "
    "Answer ENTAILMENT when SENTENCE_2 must be true if SENTENCE_1 is true, "
    "CONTRADICTION when SENTENCE_2 cannot be true if SENTENCE_1 is true, "
    "and NEUTRAL when SENTENCE_1 settles neither. "
    "Reply with one word: ENTAILMENT, NEUTRAL or CONTRADICTION."
)


def load_samples(path: Path) -> list[Sample]:
    """Read ``mli_test_v1.jsonl``: one JSON object per line with sentence1, sentence2, gold_label."""
    samples, seen = [], []
    for number, row in read_jsonl(path):
        item = f"line {number}"
        premise = require_text(path, row, "sentence1", item)
        hypothesis = require_text(path, row, "sentence2", item)
        gold = require_text(path, row, "gold_label", item).strip().lower()
        if gold.upper() not in LABELS:
            raise DataError(path, f"{gold!r} is not one of entailment, neutral, contradiction", item=item, field="gold_label")
        pair_id = row.get("pairID", f"line-{number}")
        if not isinstance(pair_id, (str, int)) or isinstance(pair_id, bool) or not str(pair_id).strip():
            raise DataError(path, f"expected a text or number id, got {pair_id!r}", item=item, field="pairID")
        raw = {"sentence1": premise, "sentence2": hypothesis, "gold_label": row["gold_label"]}  # for reference prompts
        samples.append(Sample(id=str(pair_id), fields={"sentence1": premise, "sentence2": hypothesis, "raw": raw},
                              reference=gold))
        seen.append((item, str(pair_id), [premise.strip(), hypothesis.strip()]))
    if not samples:
        raise DataError(path, "no items")
    check_unique(path, seen, "pairID")
    return samples


def _user_text(sample: Sample) -> str:
    return f"SENTENCE_1: {sample.fields['sentence1']}\nSENTENCE_2: {sample.fields['sentence2']}"


def build_prompt(sample: Sample, shots: Sequence[Sample]) -> Chat:
    """System message, then each example as a user/assistant turn, then the item."""
    return fewshot_chat(SYSTEM, _user_text, sample, shots, answer=lambda shot: str(shot.reference).upper())


def score_sample(output: str, sample: Sample) -> dict[str, float]:
    """Reference rule for correctness; ``no_label`` is 1 when no valid label appears at all."""
    return label_scores(output, str(sample.reference), LABELS, rule="mednli")


def constant_answers(samples: Sequence[Sample]) -> dict[str, str]:
    """The trivial baseline's constant: the most frequent gold label, as the prompt asks for it."""
    return {"majority": most_frequent([str(s.reference).upper() for s in samples])}


TASK = TaskSpec(
    name="mednli",
    title="MedNLI",
    filename="mli_test_v1.jsonl",
    fewshot=3,
    max_new_tokens=20,
    metrics={
        # the share of items whose gold label occurs exactly once in the output
        "accuracy": MetricSpec("accuracy", binary=True),
        # the share of outputs naming none of the three labels
        "no_label_rate": MetricSpec("no_label_rate", higher_is_better=False, binary=True),
    },
    load_samples=load_samples,
    build_prompt=build_prompt,
    score_sample=score_sample,
    prompt_version="mednli-1",
    echo=lambda sample: f"{sample.fields['sentence1']}\n{sample.fields['sentence2']}",
    constants=constant_answers,
    # the reference's prompts: premise, hypothesis and the raw label, as read
    reference=fewshot_script("eval_mednli.py", user=("sentence1", "sentence2"), answer=("gold_label",),
                             values=lambda sample: sample.fields["raw"]),
)
