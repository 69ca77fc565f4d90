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
         r"patient patient_01, question 1, field 'correct': no option equals the correct answer 'Something else'$"),
        (lambda d: d["patient_01"]["questions"][1].update(correct="C"),
         r"question 1, field 'correct': no option equals the correct answer 'C' \('correct' holds a letter; "),
        (lambda d: d["patient_01"]["questions"][1].update(answer_d=d["patient_01"]["questions"][1]["correct"] + " "),
         r"question 1, field 'correct': options D, E all equal the correct answer 'Neutropenic fever': the gold is ambiguous"),
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


# -- the gold letter: medgate's rule and the reference's -------------------------------------------

def reordered_question(correct: str) -> dict:
    """Options in the file in the key order C, A, B, D, E."""
    return {"No": 1, "question": "Which symptom?", "answer_c": "Chest pain at rest", "answer_a": "Abdominal pain",
            "answer_b": "Heart failure", "answer_d": "Fever", "answer_e": "Cough", "correct": correct,
            "answer_location": {"text_0": {"start": [0.0], "end": [0.5]}}}


def write_bench(tmp_path, question: dict):
    """Patient p1 with the question, then five others whose documents are the distractors the
    protocol draws (10 of other patients)."""
    data = {"p1": {"texts": {"text_0": "Doc one.", "text_1": "Doc two."}, "questions": [question]}}
    for n in range(2, 7):
        data[f"p{n}"] = {"texts": {"text_0": f"Note {n} a.", "text_1": f"Note {n} b."},
                         "questions": [{**reordered_question("Fever"), "No": n}]}
    path = tmp_path / "benchmark_v5.json"
    path.write_text(json.dumps(data))
    return path


def test_reference_rule_takes_the_first_option_in_the_files_key_order_containing_correct(tmp_path):
    path = write_bench(tmp_path, reordered_question("pain"))
    sample, *_ = task.load_samples_reference(path)
    assert sample.reference == "C"  # answer_c comes first in the file and contains "pain"; A does too
    # the prompt lists the options in letter order, as the reference's does, not in the file's order
    assert list(sample.fields["options"].items()) == [
        ("A", "Abdominal pain"), ("B", "Heart failure"), ("C", "Chest pain at rest"), ("D", "Fever"), ("E", "Cough")]
    with pytest.raises(DataError, match=r"question 0, field 'correct': no option equals the correct answer 'pain'$"):
        task.load_samples(path)  # medgate's rule wants one option equal to it


def test_reference_rule_does_not_strip_and_medgates_does(tmp_path):
    path = write_bench(tmp_path, reordered_question("Heart failure "))
    sample, *_ = task.load_samples(path)
    assert sample.reference == "B" and sample.fields["options"]["B"] == "Heart failure"
    # "Heart failure " (with its space) is in no option: the reference would score every answer
    # wrong; medgate refuses the item instead
    with pytest.raises(DataError, match=r"field 'correct': no option contains the correct answer 'Heart failure ' "
                                        r"\(the reference's rule\)"):
        task.load_samples_reference(path)


def test_reference_rule_picking_a_key_the_prompt_does_not_show_is_a_data_error(tmp_path):
    question = reordered_question("Fever")
    question = {"answer_x": "Fever with chills", **question}  # an extra 'answer...' key, first in the file
    with pytest.raises(DataError, match=r"field 'correct': the reference's rule picks 'X', which is not one of the "
                                        r"options A, B, C, D, E its prompt shows"):
        task.load_samples_reference(write_bench(tmp_path, question))


def test_reference_loader_keeps_raw_texts(tmp_path):
    question = {**reordered_question("Fever"), "question": "  Which symptom?\n", "answer_d": " Fever "}
    sample, *_ = task.load_samples_reference(write_bench(tmp_path, question))
    assert sample.fields["question"] == "  Which symptom?\n" and sample.fields["options"]["D"] == " Fever "
    assert sample.reference == "D"
    own, *_ = task.load_samples(write_bench(tmp_path, question))
    assert own.fields["question"] == "Which symptom?" and own.fields["options"]["D"] == "Fever"


@given(st.permutations(["a", "b", "c", "d", "e"]), st.sampled_from(["a", "b", "c", "d", "e"]))
def test_reference_gold_is_the_first_containing_option_in_key_order(order, right):
    texts = {"a": "renal failure", "b": "acute renal failure", "c": "failure", "d": "sepsis", "e": "anemia"}
    question = {f"answer_{k}": texts[k] for k in order} | {"correct": texts[right]}
    expected = next(k.upper() for k in order if texts[right] in texts[k])
    assert task.reference_gold_letter(question) == expected


# -- the budget: task 1 within 8,140 tokens at any context, tasks 2 and 3 within the context -----------

def long_bench(words: int = 4000) -> dict:
    """Five patients with four long documents each (one word is one token in the whitespace context)."""
    data = {}
    for p in range(5):
        texts = {f"text_{i}": " ".join(f"p{p}d{i}w{j}" for j in range(words)) for i in range(4)}
        question = {"No": 0, "question": "What was found on the scan at admission of this patient?",
                    **{f"answer_{l}": f"finding {l} of several words" for l in "abcde"}, "correct": "finding c of several words",
                    "answer_location": {"text_1": {"start": [0.1], "end": [0.2]}}}
        data[f"patient_{p}"] = {"texts": texts, "questions": [question]}
    return data


@pytest.mark.parametrize("context", [8192, 16384, 32768])
@pytest.mark.parametrize("mode", ["medgate", "reference"])
def test_system_and_user_message_stay_within_the_limits(tmp_path, context, mode):
    from medgate.models.engines.fake import whitespace_context
    from tests.reference_checkout import TEXTS

    path = tmp_path / "benchmark_v5.json"
    path.write_text(json.dumps(long_bench()))
    ctx = whitespace_context(context)
    if mode == "reference":
        variant = task.reference_variant(TEXTS["longhealth"])
        items = variant["prepare"](variant["load_samples"](path)[:1], ctx)
        build = variant["build_prompt"]
    else:
        items, build = task.prepare(task.load_samples(path)[:1], ctx), task.build_prompt
    for item in items:
        tokens = sum(ctx.count_tokens(m["content"]) for m in build(item, []))
        limit = min(8140, context - 50 - task.TEMPLATE_MARGIN) if item.fields["task"] == 1 else context - 50 - task.TEMPLATE_MARGIN
        assert tokens <= limit <= (8140 if item.fields["task"] == 1 else context - 50)
        assert tokens >= limit - 100  # the budget is used, not wasted
        assert item.meta["tokens_cut"] > 0  # the documents did overflow it
