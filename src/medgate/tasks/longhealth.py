"""LongHealth: multiple-choice questions over a patient's long discharge documents, including
questions that cannot be answered from the documents given.

Protocol (PROTOCOL.md): ``benchmark_v5.json``; zero-shot; 50 new tokens; the answer begins
"The correct answer is", then the letter and a colon. Documents are packed to a token budget
with the model's own tokenizer: first the documents holding the answer, then others until the
budget is full, the overflowing document cut at the budget, then all shuffled.
- Task 1: the patient's own documents, 5 prompts per question (each a new shuffle).
- Tasks 2 and 3: option F "cannot be answered" is added; 10 prompts per question, each with 10
  documents of other patients as distractors. Even variants (task 3) carry distractors only
  (gold F); odd variants (task 2) carry the answer documents too (gold: the right letter).
Every prompt records tokens kept and cut and whether an answer span was cut.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from medgate.core.errors import DataError
from medgate.core.types import Chat, MetricSpec, PromptContext, Sample
from medgate.tasks.base import TaskSpec
from medgate.tasks.files import check_text, check_unique, read_json, require_text

LETTERS = ("A", "B", "C", "D", "E")
OPTION_F = "Question cannot be answered with provided documents"
TASK1_PROMPTS, TASK23_PROMPTS, DISTRACTORS = 5, 10, 10
REFERENCE_TASK1_BUDGET = 8140  # the reference's task-1 budget, before the system prompt
MAX_NEW_TOKENS = 50
ANSWER_RE = re.compile(r"The correct answer is (\w):")
SEPARATOR = "\n\n" + "-" * 12 + " next document " + "-" * 12 + "\n\n"

SYSTEM = (
    "You are a physician reviewing a patient's discharge documents to answer a multiple-choice "
    "question. Read the documents, choose the one correct option, and begin your reply with "
    "'The correct answer is', followed by the option's letter, a colon and the option's text, "
    "for example: The correct answer is B: pneumonia."
)


def load_samples(path: Path) -> list[Sample]:
    """One sample per question; each carries its patient's documents and the pool of all documents."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise DataError(path, "expected a JSON object of patients {patient_id: {...}}")
    pool: list[tuple[str, str, str]] = []  # (patient, text key, text) of every document
    patients: dict[str, dict[str, str]] = {}
    for pid, patient in data.items():
        if not isinstance(patient, dict):
            raise DataError(path, f"expected an object, got {_kind(patient)}", item=f"patient {pid}")
        texts = _non_empty(path, patient, "texts", dict, f"patient {pid}")
        for key, text in texts.items():
            check_text(path, text, f"patient {pid}", f"texts.{key}")
            pool.append((pid, key, text))
        patients[pid] = texts
    # A patient copied under another id would be a distractor of itself and scored twice.
    check_unique(path, [(f"patient {pid}", pid, sorted(texts.values())) for pid, texts in patients.items()], "patient")
    _check_distractors(path, pool)
    samples = []
    for pid, patient in data.items():
        questions = _non_empty(path, patient, "questions", list, f"patient {pid}")
        for index, question in enumerate(questions):
            samples.append(_question_sample(path, pid, index, question, patients[pid], pool))
    check_unique(path, [(f"question {s.id}", s.id, [s.id]) for s in samples], "question")
    return samples


def _non_empty(path: Path, patient: Mapping[str, Any], field: str, kind: type, item: str) -> Any:
    value = patient.get(field)
    if value is None:
        raise DataError(path, "missing field", item=item, field=field)
    if not isinstance(value, kind):
        raise DataError(path, f"expected {'an object' if kind is dict else 'a list'}, got {_kind(value)}",
                        item=item, field=field)
    if not value:
        raise DataError(path, "empty", item=item, field=field)
    return value


def _check_distractors(path: Path, pool: Sequence[tuple[str, str, str]]) -> None:
    """Tasks 2 and 3 draw DISTRACTORS documents of other patients for every question: a file too
    small for that would give prompts with fewer (or no) documents than the protocol's."""
    per_patient: dict[str, int] = {}
    for pid, _, _ in pool:
        per_patient[pid] = per_patient.get(pid, 0) + 1
    for pid, own in per_patient.items():
        others = len(pool) - own
        if others < DISTRACTORS:
            raise DataError(path, f"{others} documents of other patients, but tasks 2 and 3 draw {DISTRACTORS} "
                                  "distractors for every question (the file holds too few patients)",
                            item=f"patient {pid}")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", type(None): "null"}.get(type(value), type(value).__name__)


def _question_sample(path: Path, pid: str, index: int, q: Any, texts: dict[str, str],
                     pool: list[tuple[str, str, str]]) -> Sample:
    item = f"patient {pid}, question {index}"
    if not isinstance(q, dict):
        raise DataError(path, "expected an object", item=item)
    for field in ("question", "correct", *(f"answer_{l.lower()}" for l in LETTERS)):
        require_text(path, q, field, item)
    options = {letter: q[f"answer_{letter.lower()}"].strip() for letter in LETTERS}
    correct = q["correct"].strip()
    matching = [l for l in LETTERS if options[l] == correct] or [l for l in LETTERS if correct in options[l]]
    if not matching:
        raise DataError(path, f"no option contains the correct answer {correct!r}", item=item, field="correct")
    location = q.get("answer_location")
    if not isinstance(location, dict) or not location:
        raise DataError(path, "missing or empty", item=item, field="answer_location")
    spans: dict[str, list[tuple[float, float]]] = {}
    for key, where in location.items():
        if key not in texts:
            raise DataError(path, f"names {key!r}, which is not among the patient's texts ({', '.join(texts)})",
                            item=item, field=f"answer_location.{key}")
        starts, ends = (where or {}).get("start"), (where or {}).get("end")
        if not isinstance(starts, list) or not isinstance(ends, list) or len(starts) != len(ends) or not starts:
            raise DataError(path, "needs equal, non-empty start and end lists", item=item, field=f"answer_location.{key}")
        if not all(isinstance(x, (int, float)) and 0 <= x <= 1 for x in (*starts, *ends)):
            raise DataError(path, "start and end are fractions of the document in [0, 1]", item=item, field=f"answer_location.{key}")
        spans[key] = list(zip(map(float, starts), map(float, ends)))
    qid = f"{pid}-q{q.get('No', index)}"
    return Sample(
        id=qid,
        fields={"patient": pid, "question": q["question"].strip(), "options": options, "texts": texts,
                "spans": spans, "pool": pool},
        reference=matching[0],
    )


def pack(documents: Sequence[tuple[str, str]], answer_keys: set[str], spans: dict[str, list[tuple[float, float]]],
         budget: int, ctx: PromptContext) -> tuple[list[str], dict[str, Any]]:
    """Fit (key, text) documents, answer documents first, into ``budget`` tokens.

    Returns the kept texts (in packing order) and counts: tokens kept and cut, and whether any
    answer span fell outside what was kept.
    """
    ordered = [d for d in documents if d[0] in answer_keys] + [d for d in documents if d[0] not in answer_keys]
    kept: list[str] = []
    used = cut = 0
    answer_cut = False
    for key, text in ordered:
        n = ctx.count_tokens(text)
        room = budget - used
        if n <= room:
            kept.append(text)
            used += n
            continue
        cut += n - max(room, 0)
        kept_text = ctx.truncate(text, room) if room > 0 else ""
        if kept_text:
            kept.append(kept_text)
            used += ctx.count_tokens(kept_text)
        if key in answer_keys:
            keep_fraction = len(kept_text) / len(text)
            answer_cut |= any(end > keep_fraction for _, end in spans.get(key, []))
    return kept, {"tokens_kept": used, "tokens_cut": cut, "answer_span_cut": answer_cut, "prompts": 1}


def prepare(samples: list[Sample], ctx: PromptContext) -> list[Sample]:
    """Expand each question into its task-1 and task-2/3 prompts, packed to the context budget."""
    system_tokens = ctx.count_tokens(SYSTEM)
    out = []
    for sample in samples:
        f = sample.fields
        own = list(f["texts"].items())
        answer_keys = set(f["spans"])
        # Room for the question, the options, separators and the answer; the reference left none.
        reserve = ctx.count_tokens(_question_block(f["question"], f["options"], with_f=True)) + MAX_NEW_TOKENS + 64
        reserve += ctx.count_tokens(SEPARATOR) * (len(own) + DISTRACTORS)
        budget1 = min(REFERENCE_TASK1_BUDGET - system_tokens, ctx.context_len - system_tokens - reserve)
        budget23 = ctx.context_len - system_tokens - reserve
        if budget23 <= 0:
            raise DataError(f["patient"], f"the context of {ctx.context_len} tokens leaves no room for documents",
                            item=sample.id)
        for variant in range(TASK1_PROMPTS):
            rng = random.Random(f"{sample.id}/task1/{variant}")
            docs, info = pack(own, answer_keys, f["spans"], budget1, ctx)
            rng.shuffle(docs)
            out.append(_variant(sample, 1, variant, docs, sample.reference, info, with_f=False))
        others = [(f"{p}/{k}", t) for p, k, t in f["pool"] if p != f["patient"]]
        for variant in range(TASK23_PROMPTS):
            rng = random.Random(f"{sample.id}/task23/{variant}")
            distractors = rng.sample(others, min(DISTRACTORS, len(others)))
            with_answer = variant % 2 == 1
            candidates = ([d for d in own if d[0] in answer_keys] if with_answer else []) + distractors
            docs, info = pack(candidates, answer_keys if with_answer else set(), f["spans"], budget23, ctx)
            rng.shuffle(docs)
            task, gold = (2, sample.reference) if with_answer else (3, "F")
            out.append(_variant(sample, task, variant, docs, gold, info, with_f=True))
    return out


def _variant(sample: Sample, task: int, variant: int, docs: list[str], gold: str, info: dict[str, Any],
             with_f: bool) -> Sample:
    f = sample.fields
    options = dict(f["options"], **({"F": OPTION_F} if with_f else {}))
    return Sample(
        id=f"{sample.id}-task{task}-v{variant}",
        fields={"task": task, "documents": docs, "question": f["question"], "options": options},
        reference=gold, meta=info,
    )


def _question_block(question: str, options: dict[str, str], *, with_f: bool) -> str:
    lines = [f"Question: {question}"] + [f"{letter}: {text}" for letter, text in options.items()]
    if with_f and "F" not in options:
        lines.append(f"F: {OPTION_F}")
    return "\n".join(lines)


def build_prompt(sample: Sample, shots: Sequence[Sample]) -> Chat:
    f = sample.fields
    body = SEPARATOR.join(f["documents"]) + "\n\n" + _question_block(f["question"], f["options"], with_f=False)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}]


def parse_answer(text: str) -> str | None:
    match = ANSWER_RE.search(text)
    return match.group(1) if match else None


def score_sample(output: str, sample: Sample) -> dict[str, float]:
    return {f"accuracy_task{sample.fields['task']}": float(parse_answer(output) == sample.reference)}


def packing_notes(totals: Mapping[str, int]) -> dict[str, str]:
    """The report's line on packing: prompts, tokens kept and cut, answer spans cut."""
    return {"packing": f"{totals.get('prompts', 0)} prompts, {totals.get('tokens_kept', 0)} tokens kept, "
                       f"{totals.get('tokens_cut', 0)} cut, answer span cut in {totals.get('answer_span_cut', 0)}"}


TASK = TaskSpec(
    name="longhealth",
    title="LongHealth",
    filename="benchmark_v5.json",
    fewshot=0,
    max_new_tokens=MAX_NEW_TOKENS,
    metrics={
        # task 1: information extraction from the patient's own documents; task 2: the answer documents
        # among distractors (option F offered); task 3: distractors only, the right answer is F
        **{name: MetricSpec(name, binary=True) for name in ("accuracy_task1", "accuracy_task2", "accuracy_task3")},
    },
    load_samples=load_samples,
    build_prompt=build_prompt,
    score_sample=score_sample,
    prepare=prepare,
    notes=packing_notes,
    prompt_version="longhealth-1",
)
