import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medgate.core.errors import DataError
from medgate.models.engines.fake import whitespace_context
from medgate.tasks import longhealth as task
from tests.conftest import FIXTURES

BENCH = json.loads((FIXTURES / "benchmark_v5.json").read_text())


def test_fixture_size_and_answer_locations_point_at_the_answer():
    assert len(BENCH) >= 4
    for patient in BENCH.values():
        assert len(patient["texts"]) >= 3 and len(patient["questions"]) >= 3
        for q in patient["questions"]:
            for key, where in q["answer_location"].items():
                text = patient["texts"][key]
                span = text[int(where["start"][0] * len(text)): int(where["end"][0] * len(text)) + 1]
                # the located span holds the answer's key words
                assert any(word.lower() in span.lower() for word in q["correct"].split() if len(word) > 3), (q["question"], span)


def test_gold_letter_is_the_option_holding_the_correct_text():
    samples = task.load_samples(FIXTURES / "benchmark_v5.json")
    assert len(samples) == sum(len(p["questions"]) for p in BENCH.values())
    for sample in samples:
        assert sample.fields["options"][sample.reference]


def test_prepare_expands_each_question_into_5_plus_10_prompts_with_tasks_and_golds():
    samples = task.load_samples(FIXTURES / "benchmark_v5.json")[:2]
    items = task.prepare(samples, whitespace_context(8192))
    assert len(items) == 2 * 15
    first = [i for i in items if i.id.startswith(samples[0].id + "-")]
    assert [i.fields["task"] for i in first] == [1] * 5 + [3, 2] * 5
    assert all(i.reference == "F" for i in first if i.fields["task"] == 3)
    assert all(i.reference == samples[0].reference for i in first if i.fields["task"] in (1, 2))
    assert all("F" in i.fields["options"] for i in first if i.fields["task"] != 1)
    # task 3 prompts hold no document of the patient
    own = set(BENCH[samples[0].fields["patient"]]["texts"].values())
    assert all(not own & set(i.fields["documents"]) for i in first if i.fields["task"] == 3)
    # task 1 shuffles differ between variants but hold the same documents
    task1 = [i.fields["documents"] for i in first if i.fields["task"] == 1]
    assert all(sorted(d) == sorted(task1[0]) for d in task1) and len({tuple(d) for d in task1}) > 1


def test_prepare_is_deterministic():
    samples = task.load_samples(FIXTURES / "benchmark_v5.json")[:1]
    a = task.prepare(samples, whitespace_context(8192))
    b = task.prepare(samples, whitespace_context(8192))
    assert [i.fields["documents"] for i in a] == [i.fields["documents"] for i in b]


def test_packing_puts_answer_documents_first_and_cuts_the_overflowing_one():
    ctx = whitespace_context(10_000)
    docs = [("text_0", "a " * 50), ("text_1", "answer " * 40 + "tail " * 20), ("text_2", "c " * 30)]
    kept, info = task.pack(docs, {"text_1"}, {"text_1": [(0.0, 0.5)]}, budget=100, ctx=ctx)
    assert kept[0].startswith("answer")  # the answer document first
    # answer doc 60 kept; text_0 keeps 40 of 50 (10 cut); text_2 finds no room (30 cut)
    assert info == {"tokens_kept": 100, "tokens_cut": 10 + 30, "answer_span_cut": False, "prompts": 1}
    # a budget that cuts inside the answer span is flagged
    _, info = task.pack(docs, {"text_1"}, {"text_1": [(0.0, 0.9)]}, budget=30, ctx=ctx)
    assert info["answer_span_cut"] is True and info["tokens_kept"] == 30


@given(st.integers(1, 400))
def test_packing_never_exceeds_the_budget(budget):
    ctx = whitespace_context(10_000)
    docs = [(f"text_{i}", "word " * (20 + 7 * i)) for i in range(6)]
    kept, info = task.pack(docs, {"text_2"}, {"text_2": [(0.1, 0.2)]}, budget=budget, ctx=ctx)
    assert sum(ctx.count_tokens(t) for t in kept) == info["tokens_kept"] <= budget
    assert info["tokens_kept"] + info["tokens_cut"] == sum(ctx.count_tokens(t) for _, t in docs)


@pytest.mark.parametrize(
    ("output", "gold", "correct"),
    [
        ("The correct answer is B: pneumonia", "B", 1.0),
        ("I think the correct answer is B: x", "B", 0.0),  # case matters, as in the reference pattern
        ("The correct answer is F: Question cannot be answered", "F", 1.0),
        ("The correct answer is C: x. The correct answer is B: y", "B", 0.0),  # the first match counts
        ("B", "B", 0.0),
    ],
)
def test_scoring(output, gold, correct):
    from medgate.core.types import Sample

    sample = Sample(id="x", fields={"task": 2}, reference=gold)
    assert task.score_sample(output, sample) == {"accuracy_task2": correct}


@given(st.text())
def test_parser_is_total(text):
    parsed = task.parse_answer(text)
    assert parsed is None or (len(parsed) == 1 and parsed.isalnum() or parsed == "_")


def test_prompt_has_documents_question_and_lettered_options():
    samples = task.load_samples(FIXTURES / "benchmark_v5.json")[:1]
    item = task.prepare(samples, whitespace_context(8192))[5]  # a task 3 prompt
    system, user = task.build_prompt(item, [])
    assert system["role"] == "system" and "The correct answer is" in system["content"]
    lines = user["content"].splitlines()
    assert [l[:2] for l in lines[-6:]] == ["A:", "B:", "C:", "D:", "E:", "F:"]
    assert lines[-7].startswith("Question: ") and task.SEPARATOR.strip() in user["content"]


def broken(mutate):
    data = copy.deepcopy(BENCH)
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["patient_01"]["questions"][0].update(answer_location={"text_9": {"start": [0.1], "end": [0.2]}}),
         r"patient patient_01, question 0, field 'answer_location.text_9': names 'text_9'"),
        (lambda d: d["patient_01"]["questions"][1].update(correct="Something else"),
         r"patient patient_01, question 1, field 'correct': no option contains"),
        (lambda d: d["patient_02"]["questions"][0].pop("answer_c"), r"patient patient_02, question 0, field 'answer_c'"),
        (lambda d: d["patient_02"]["questions"][0]["answer_location"]["text_0"].update(end=[1.5]),
         r"field 'answer_location.text_0': start and end are fractions"),
        (lambda d: d["patient_03"].update(texts={}), r"patient patient_03, field 'texts': empty"),
    ],
)
def test_loader_errors(tmp_path, mutate, expected):
    path = tmp_path / "benchmark_v5.json"
    path.write_text(json.dumps(broken(mutate)))
    with pytest.raises(DataError, match=expected):
        task.load_samples(path)
