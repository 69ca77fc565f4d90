"""Emergency triage: a team's own task, gated by medgate like a built-in one.

Everything the task is lives here: how the data file is read (with medgate's checked readers),
how a prompt is built (the protocol's few-shot chat), and how an answer is scored, including a
metric medgate does not have (the under-triage rate: a patient sent to wait who should not)."""

import re
from pathlib import Path

import pytest

from medgate import DataError, MetricSpec, Sample, TaskSpec, fewshot_chat, read_jsonl, require_text

SYSTEM = ("You are an emergency department triage nurse. Give the triage level of the patient on a five-level "
          "scale: 1 needs immediate life-saving care, 2 is high risk, 3 needs several investigations, 4 needs one, "
          "5 needs none. Answer with the level only, as 'Level N'.")
LEVEL_RE = re.compile(r"\b([1-5])\b")


def load_samples(path: Path) -> list[Sample]:
    samples = []
    for line, row in read_jsonl(path):
        item = f"line {line}"
        text = require_text(path, row, "presentation", item)
        level = row.get("level")
        if isinstance(level, bool) or level not in (1, 2, 3, 4, 5):
            raise DataError(path, f"expected a triage level 1 to 5, got {level!r}", item=item, field="level")
        samples.append(Sample(id=require_text(path, row, "case_id", item), fields={"presentation": text}, reference=level))
    return samples


def _user(sample: Sample) -> str:
    return f"Patient: {sample.fields['presentation']}\nTriage level?"


def build_prompt(sample: Sample, shots: list[Sample]) -> list[dict[str, str]]:
    return fewshot_chat(SYSTEM, _user, sample, shots, answer=lambda shot: f"Level {shot.reference}")


def parse_level(output: str) -> int | None:
    match = LEVEL_RE.search(output)
    return int(match.group(1)) if match else None


def score_sample(output: str, sample: Sample) -> dict[str, float]:
    level = parse_level(output)
    return {
        "accuracy": float(level == sample.reference),
        # No level, or a less urgent one than the truth: the unsafe error (the patient waits).
        "undertriage_rate": float(level is None or level > sample.reference),
        "no_answer_rate": float(level is None),
    }


TASK = TaskSpec(
    name="ed_triage",
    title="Emergency triage",
    filename="triage.jsonl",  # a file of this name in --data-dir replaces the sample data below
    path="../data/triage.jsonl",  # relative to this module
    fewshot=3,
    max_new_tokens=8,
    metrics={
        "accuracy": MetricSpec("accuracy", binary=True),
        "undertriage_rate": MetricSpec("undertriage_rate", higher_is_better=False, binary=True),
        "no_answer_rate": MetricSpec("no_answer_rate", higher_is_better=False, binary=True),
    },
    load_samples=load_samples,
    build_prompt=build_prompt,
    score_sample=score_sample,
    prompt_version="ed_triage-v1",
)


@pytest.mark.parametrize("metric", TASK.metric_names)
def test_ed_triage(medgate_task, metric):
    medgate_task.gate(metric)
