"""LongHealth: multiple-choice questions over a patient's long discharge documents, including
questions that cannot be answered from the documents given.

Protocol (PROTOCOL.md): ``benchmark_v5.json``; zero-shot; 50 new tokens; the answer begins
"The correct answer is", then the letter and a colon. Documents are packed to a token budget
with the model's own tokenizer: first the documents holding the answer, then others until the
budget is full, the overflowing document cut at the budget, then all shuffled. The budget is what
is left of a limit on system + user message once the template, question, options and separators
are counted: 8,140 tokens for task 1 (the reference's), the context for tasks 2 and 3; both leave
the answer's 50 tokens and 64 for the chat template's markup.
- Task 1: the patient's own documents, 5 prompts per question (each a new shuffle).
- Tasks 2 and 3: option F "cannot be answered" is added; 10 prompts per question, each with 10
  documents of other patients as distractors. Even variants (task 3) carry distractors only
  (gold F); odd variants (task 2) carry the answer documents too (gold: the right letter).
Every prompt records tokens kept and cut and whether an answer span was cut.
The gold letter: the one option equal to ``correct`` after stripping (an ambiguous or missing
match is a data error). With the reference's prompts: its rule, the first option in the file's
key order whose text contains ``correct``, and its raw texts, separator and option layout (options
A to E in letter order, whatever the file's key order, as the reference's prompt lists them).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from medgate.core.errors import DataError
from medgate.core.types import Chat, MetricSpec, PromptContext, Sample
from medgate.tasks.base import TaskSpec
from medgate.tasks.files import check_text, check_unique, read_json, require_text
from medgate.tasks.reference_prompts import ReferenceScript
from medgate.tasks.trivial import most_frequent

LETTERS = ("A", "B", "C", "D", "E")
OPTION_F = "Question cannot be answered with provided documents"
TASK1_PROMPTS, TASK23_PROMPTS, DISTRACTORS = 5, 10, 10
REFERENCE_TASK1_BUDGET = 8140  # the reference's task-1 limit on system + user message
MAX_NEW_TOKENS = 50
TEMPLATE_MARGIN = 64  # tokens left for the chat template's markup around the messages
ANSWER_RE = re.compile(r"The correct answer is (\w):")
SEPARATOR = "\n\n" + "-" * 12 + " next document " + "-" * 12 + "\n\n"
REFERENCE_SEPARATOR = "\n\n" + "-" * 14 + "\n\n"  # PROTOCOL.md, "Reference prompts"

SYSTEM = (
    "You are a physician reviewing a patient's discharge documents to answer a multiple-choice "
    "question. Read the documents, choose the one correct option, and begin your reply with "
    "'The correct answer is', followed by the option's letter, a colon and the option's text, "
    "for example: The correct answer is B: pneumonia."
)


def load_samples(path: Path) -> list[Sample]:
    """One sample per question; each carries its patient's documents and the pool of all documents.
    The gold letter: the one option that equals ``correct`` after stripping."""
    return _load(path, reference=False)


def load_samples_reference(path: Path) -> list[Sample]:
    """As ``load_samples``, with the reference's gold rule and its raw texts (reference prompts)."""
    return _load(path, reference=True)


def _load(path: Path, *, reference: bool) -> list[Sample]:
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
            samples.append(_question_sample(path, pid, index, question, patients[pid], pool, reference))
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


def gold_letter(options: Mapping[str, str], correct: str) -> tuple[str | None, str]:
    """medgate's rule: the one option equal to ``correct`` after stripping. Returns the letter, or
    None and why not."""
    matching = [letter for letter, text in options.items() if text.strip() == correct.strip()]
    if len(matching) == 1:
        return matching[0], ""
    if matching:
        return None, (f"options {', '.join(matching)} all equal the correct answer {correct.strip()!r}: "
                      "the gold is ambiguous")
    hint = ""
    if re.fullmatch(r"[A-Ea-e]", correct.strip()):
        hint = " ('correct' holds a letter; LongHealth's 'correct' is the text of the right option)"
    return None, f"no option equals the correct answer {correct.strip()!r}{hint}"


def reference_options(question: Mapping[str, Any]) -> dict[str, str]:
    """The options as the reference's prompt lists them: ``answer_a`` to ``answer_e`` in letter
    order, whatever the file's key order, upper-cased letters, texts as read."""
    return {letter: question[f"answer_{letter.lower()}"] for letter in LETTERS}


def _gold_candidates(question: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, letter) of what the reference's gold rule looks at: the question's keys in the file's
    order that start with 'answer' and do not end with 'location', lettered by their last character."""
    return [(key, key[-1].upper()) for key in question if key.startswith("answer") and not key.endswith("location")]


def reference_gold_letter(question: Mapping[str, Any]) -> str | None:
    """The reference's rule: the first option, in the file's key order (not the order the prompt
    lists them in), whose text contains ``correct`` (unstripped); None when none does."""
    correct = question["correct"]
    return next((letter for key, letter in _gold_candidates(question) if correct in question[key]), None)


def _question_sample(path: Path, pid: str, index: int, q: Any, texts: dict[str, str],
                     pool: list[tuple[str, str, str]], reference: bool) -> Sample:
    item = f"patient {pid}, question {index}"
    if not isinstance(q, dict):
        raise DataError(path, "expected an object", item=item)
    for field in ("question", "correct", *(f"answer_{l.lower()}" for l in LETTERS)):
        require_text(path, q, field, item)
    if reference:
        options = reference_options(q)
        for key, _ in _gold_candidates(q):
            if not isinstance(q[key], str):
                raise DataError(path, f"expected text, got {type(q[key]).__name__}", item=item, field=key)
        gold = reference_gold_letter(q)
        if gold is None:  # the reference would score every answer wrong; medgate refuses the item
            raise DataError(path, f"no option contains the correct answer {q['correct']!r} (the reference's rule)",
                            item=item, field="correct")
        if gold not in options:  # a further 'answer...' key of the file: never shown, never answerable
            raise DataError(path, f"the reference's rule picks {gold!r}, which is not one of the options "
                                  f"{', '.join(LETTERS)} its prompt shows", item=item, field="correct")
        question_text = q["question"]
    else:
        options = {letter: q[f"answer_{letter.lower()}"].strip() for letter in LETTERS}
        gold, problem = gold_letter(options, q["correct"])
        if gold is None:
            raise DataError(path, problem, item=item, field="correct")
        question_text = q["question"].strip()
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
        fields={"patient": pid, "question": question_text, "options": options, "texts": texts,
                "spans": spans, "pool": pool},
        reference=gold,
    )


def pack(documents: Sequence[tuple[str, str]], answer_keys: set[str], spans: dict[str, list[tuple[float, float]]],
         budget: int, ctx: PromptContext, counts: dict[str, int] | None = None) -> tuple[list[str], dict[str, Any]]:
    """Fit (key, text) documents, answer documents first, into ``budget`` tokens.

    Returns the kept texts (in packing order) and counts: tokens kept and cut, and whether any
    answer span fell outside what was kept. ``counts`` keeps documents' token counts between calls
    (each document is packed into many prompts).
    """
    counts = {} if counts is None else counts
    ordered = [d for d in documents if d[0] in answer_keys] + [d for d in documents if d[0] not in answer_keys]
    kept: list[str] = []
    used = cut = 0
    answer_cut = False
    for key, text in ordered:
        if text not in counts:
            counts[text] = ctx.count_tokens(text)
        n = counts[text]
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


@dataclass(frozen=True)
class Layout:
    """What a prompt looks like: the system message, the document separator, and the user message
    made of documents, question and options (medgate's own, or the reference's)."""

    system: str
    separator: str
    render: Callable[[Sequence[str], str, Mapping[str, str]], str]

    def chat(self, documents: Sequence[str], question: str, options: Mapping[str, str]) -> Chat:
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.render(documents, question, options)}]


def _question_block(question: str, options: Mapping[str, str]) -> str:
    return "\n".join([f"Question: {question}"] + [f"{letter}: {text}" for letter, text in options.items()])


def _medgate_user(docs: Sequence[str], question: str, options: Mapping[str, str]) -> str:
    return SEPARATOR.join(docs) + "\n\n" + _question_block(question, options)


MEDGATE_LAYOUT = Layout(SYSTEM, SEPARATOR, _medgate_user)


def reference_layout(texts: Mapping[str, str]) -> Layout:
    """The reference's prompt (PROTOCOL.md): its ``prompt_template`` filled with the documents
    joined by its separator, the question and the options as ``A: text`` lines."""
    template = texts["prompt_template"]

    def render(docs: Sequence[str], question: str, options: Mapping[str, str]) -> str:
        lines = "\n".join(f"{letter}: {text}" for letter, text in options.items())
        return template.format(documents=REFERENCE_SEPARATOR.join(docs), question_text=question, options=lines)

    return Layout(texts["sys_prompt"], REFERENCE_SEPARATOR, render)


def limits(context_len: int) -> tuple[int, int]:
    """Tokens that system + user message may take: task 1 within the reference's 8,140 and tasks
    2 and 3 within the context, each leaving the answer's tokens and the chat template's markup."""
    room = context_len - MAX_NEW_TOKENS - TEMPLATE_MARGIN
    return min(REFERENCE_TASK1_BUDGET, room), room


def _fit(candidates: Sequence[tuple[str, str]], answer_keys: set[str], spans: dict[str, list[tuple[float, float]]],
         limit: int, ctx: PromptContext, layout: Layout, question: str, options: Mapping[str, str],
         rng: random.Random, where: str, counts: dict[str, int]) -> tuple[list[str], dict[str, Any]]:
    """Pack documents so that system + user message, as rendered, count at most ``limit`` tokens.

    The template, question, options and one separator per document are counted before documents
    are added; the rendered prompt is then measured, and the document budget shrinks by any excess
    (token counts of parts need not add up to the count of the whole)."""
    state = rng.getstate()
    system = ctx.count_tokens(layout.system)
    fixed = ctx.count_tokens(layout.render([], question, options))
    fixed += ctx.count_tokens(layout.separator) * len(candidates)
    budget = limit - system - fixed
    while True:
        if budget <= 0:
            raise DataError(where, f"{limit} tokens (the context of {ctx.context_len}) leave no room for documents")
        docs, info = pack(candidates, answer_keys, spans, budget, ctx, counts)
        rng.setstate(state)
        rng.shuffle(docs)
        total = system + ctx.count_tokens(layout.render(docs, question, options))
        if total <= limit:
            return docs, info
        budget -= total - limit


def prepare(samples: list[Sample], ctx: PromptContext) -> list[Sample]:
    """Expand each question into its task-1 and task-2/3 prompts, packed to the token limits."""
    return prepare_with(MEDGATE_LAYOUT, samples, ctx)


def prepare_with(layout: Layout, samples: list[Sample], ctx: PromptContext) -> list[Sample]:
    limit1, limit23 = limits(ctx.context_len)
    counts: dict[str, int] = {}  # token counts of whole documents, each counted once
    out = []
    for sample in samples:
        f = sample.fields
        own = list(f["texts"].items())
        answer_keys = set(f["spans"])
        where = f"patient {f['patient']}"
        options1 = dict(f["options"])
        options23 = dict(options1, F=OPTION_F)
        for variant in range(TASK1_PROMPTS):
            rng = random.Random(f"{sample.id}/task1/{variant}")
            docs, info = _fit(own, answer_keys, f["spans"], limit1, ctx, layout, f["question"], options1, rng, where,
                              counts)
            out.append(_variant(sample, 1, variant, docs, sample.reference, info, options1))
        others = [(f"{p}/{k}", t) for p, k, t in f["pool"] if p != f["patient"]]
        for variant in range(TASK23_PROMPTS):
            rng = random.Random(f"{sample.id}/task23/{variant}")
            distractors = rng.sample(others, min(DISTRACTORS, len(others)))
            with_answer = variant % 2 == 1
            candidates = ([d for d in own if d[0] in answer_keys] if with_answer else []) + distractors
            docs, info = _fit(candidates, answer_keys if with_answer else set(), f["spans"], limit23, ctx, layout,
                              f["question"], options23, rng, where, counts)
            task, gold = (2, sample.reference) if with_answer else (3, "F")
            out.append(_variant(sample, task, variant, docs, gold, info, options23))
    return out


def _variant(sample: Sample, task: int, variant: int, docs: list[str], gold: str, info: dict[str, Any],
             options: dict[str, str]) -> Sample:
    return Sample(
        id=f"{sample.id}-task{task}-v{variant}",
        fields={"task": task, "documents": docs, "question": sample.fields["question"], "options": options},
        reference=gold, meta=info,
    )


def build_prompt(sample: Sample, shots: Sequence[Sample]) -> Chat:
    f = sample.fields
    return MEDGATE_LAYOUT.chat(f["documents"], f["question"], f["options"])


def reference_variant(texts: Mapping[str, str]) -> dict[str, Any]:
    """The task's fields with the reference's prompts: its layout for packing and prompts, its
    gold rule and raw texts for loading."""
    layout = reference_layout(texts)

    def build(sample: Sample, shots: Sequence[Sample]) -> Chat:
        return layout.chat(sample.fields["documents"], sample.fields["question"], sample.fields["options"])

    return {"load_samples": load_samples_reference, "build_prompt": build,
            "prepare": lambda samples, ctx: prepare_with(layout, samples, ctx)}


def parse_answer(text: str) -> str | None:
    match = ANSWER_RE.search(text)
    return match.group(1) if match else None


def score_sample(output: str, sample: Sample) -> dict[str, float]:
    return {f"accuracy_task{sample.fields['task']}": float(parse_answer(output) == sample.reference)}


def packing_notes(totals: Mapping[str, int]) -> dict[str, str]:
    """The report's line on packing: prompts, tokens kept and cut, answer spans cut."""
    return {"packing": f"{totals.get('prompts', 0)} prompts, {totals.get('tokens_kept', 0)} tokens kept, "
                       f"{totals.get('tokens_cut', 0)} cut, answer span cut in {totals.get('answer_span_cut', 0)}"}


def constant_answers(samples: Sequence[Sample]) -> dict[str, str]:
    """Trivial baselines' constants, in the answer format: the most frequent gold letter over all
    prompts (F where tasks 3's prompts are a third of them), and the most frequent of A to E."""
    letters = [str(s.reference) for s in samples]
    out = {"majority": f"The correct answer is {most_frequent(letters)}:"}
    real = [letter for letter in letters if letter in LETTERS]
    if real:
        out["majority_a_to_e"] = f"The correct answer is {most_frequent(real)}:"
    return out


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
    prompt_version="longhealth-2",
    echo=lambda sample: str(sample.fields["question"]),
    constants=constant_answers,
    reference=ReferenceScript(file="eval_LongHealth.py",
                              constants={"sys_prompt": None,
                                         "prompt_template": ("documents", "question_text", "options")},
                              variant=reference_variant),
)
