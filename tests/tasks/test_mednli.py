import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medgate.core.errors import DataError
from medgate.core.types import Sample
from medgate.tasks import mednli
from medgate.tasks.base import split_fewshot
from tests.conftest import FIXTURES


def sample(gold: str, sid: str = "x") -> Sample:
    return Sample(id=sid, fields={"sentence1": "BP 80/40.", "sentence2": "The patient is hypotensive."}, reference=gold)


@pytest.mark.parametrize(
    ("output", "gold", "accuracy", "no_label"),
    [
        ("ENTAILMENT", "entailment", 1.0, 0.0),
        ("entailment.", "entailment", 1.0, 0.0),  # case does not matter
        ("NOT ENTAILMENT", "entailment", 1.0, 0.0),  # the reference rule, kept on purpose
        ("ENTAILMENT ENTAILMENT", "entailment", 0.0, 0.0),  # a repeated label scores 0
        ("NEUTRAL", "entailment", 0.0, 0.0),
        ("I cannot tell.", "neutral", 0.0, 1.0),
        ("", "contradiction", 0.0, 1.0),
        ("Neutral or contradiction", "contradiction", 1.0, 0.0),
    ],
)
def test_score_sample_hand_computed(output, gold, accuracy, no_label):
    assert mednli.score_sample(output, sample(gold)) == {"accuracy": accuracy, "no_label_rate": no_label}


def test_aggregate_is_the_mean_over_items_counting_each_once():
    per_item = [mednli.score_sample(o, sample(g)) for o, g in
                [("ENTAILMENT", "entailment"), ("NEUTRAL", "entailment"), ("??", "neutral"), ("CONTRADICTION", "contradiction")]]
    assert mednli.TASK.aggregate(per_item) == {"accuracy": 0.5, "no_label_rate": 0.25}


@given(st.text(), st.sampled_from(["entailment", "neutral", "contradiction"]))
def test_scores_are_bounded_and_parser_is_total(text, gold):
    scores = mednli.score_sample(text, sample(gold))
    assert scores["accuracy"] in (0.0, 1.0) and scores["no_label_rate"] in (0.0, 1.0)
    assert not (scores["accuracy"] and scores["no_label_rate"])  # a correct answer names a label


@given(st.sampled_from(mednli.LABELS), st.text(alphabet="abc .,\n", max_size=30), st.text(alphabet="xyz .,", max_size=30))
def test_a_single_label_anywhere_is_correct_and_the_other_labels_are_not(label, before, after):
    text = f"{before} {label} {after}"
    assert mednli.score_sample(text, sample(label.lower()))["accuracy"] == 1.0
    for other in set(mednli.LABELS) - {label}:
        assert mednli.score_sample(text, sample(other.lower()))["accuracy"] == 0.0


def test_build_prompt_has_system_then_shots_then_item():
    shots = [sample("neutral", "s1"), sample("contradiction", "s2")]
    chat = mednli.build_prompt(sample("entailment"), shots)
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert chat[2]["content"] == "NEUTRAL" and chat[4]["content"] == "CONTRADICTION"
    assert "SENTENCE_1: BP 80/40." in chat[-1]["content"] and "SENTENCE_2:" in chat[-1]["content"]
    assert all(label in chat[0]["content"] for label in mednli.LABELS)


def test_fewshot_split_matches_the_reference_shuffle():
    samples = [sample("neutral", str(i)) for i in range(20)]
    reference = list(samples)
    random.seed(1)
    random.shuffle(reference)
    shots, rest = split_fewshot(samples, 3)
    assert shots == reference[:3] and rest == reference[3:]


def test_shipped_fixture_is_balanced_and_large_enough():
    samples = mednli.load_samples(FIXTURES / mednli.TASK.filename)
    labels = [s.reference for s in samples]
    assert len(samples) >= 30
    assert labels.count("entailment") == labels.count("neutral") == labels.count("contradiction")
    assert len({s.id for s in samples}) == len(samples)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "line 2: not valid JSON"),
        (json.dumps({"sentence1": "a", "gold_label": "neutral"}), "line 2, field 'sentence2': missing field"),
        (json.dumps({"sentence1": "a", "sentence2": 3, "gold_label": "neutral"}), "line 2, field 'sentence2': expected text, got a number 3"),
        (json.dumps({"sentence1": "a", "sentence2": "b", "gold_label": "maybe"}), "line 2, field 'gold_label'"),
        (json.dumps(["a list"]), "line 2: expected a JSON object"),
    ],
)
def test_loader_names_file_line_and_field(tmp_path, line, expected):
    path = tmp_path / "mli_test_v1.jsonl"
    good = json.dumps({"sentence1": "a", "sentence2": "b", "gold_label": "neutral", "pairID": "p1"})
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(DataError) as err:
        mednli.load_samples(path)
    assert str(err.value).startswith(str(path)) and expected in str(err.value)
