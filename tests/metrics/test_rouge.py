import pytest
from hypothesis import given
from hypothesis import strategies as st

from medgate.metrics.rouge import rouge


def test_hand_computed():
    # reference "the patient has fever" (4 tokens), prediction "patient has a fever" (4 tokens)
    # unigrams shared: patient, has, fever -> P = R = 3/4, F = 0.75
    # bigrams shared: "patient has" -> P = R = 1/3
    # LCS "patient has fever" = 3 -> 0.75
    scores = rouge(prediction="patient has a fever", reference="the patient has fever")
    assert scores == pytest.approx({"rouge1": 0.75, "rouge2": 1 / 3, "rougeL": 0.75})


def test_reference_and_prediction_are_not_swapped(monkeypatch):
    """The F-measure is symmetric, so it cannot show a swap; precision and recall swap. rouge-score
    takes (target, prediction): spy on the scorer medgate calls and read its precision and recall
    for a prediction that is a strict subset of the reference: precision 1/1, recall 1/2."""
    import medgate.metrics.rouge as module

    real = module._scorer()
    seen = []

    class Spy:
        def score(self, target, prediction):
            seen.append(real.score(target, prediction))
            return seen[-1]

    monkeypatch.setattr(module, "_scorer", lambda: Spy())
    assert rouge(prediction="fever", reference="high fever")["rouge1"] == pytest.approx(2 / 3)  # 2 * 1 * 0.5 / 1.5
    assert (seen[0]["rouge1"].precision, seen[0]["rouge1"].recall) == (1.0, 0.5)
    assert (seen[0]["rougeL"].precision, seen[0]["rougeL"].recall) == (1.0, 0.5)


words = st.lists(st.sampled_from("fever cough pain chest left right acute chronic".split()), min_size=1, max_size=12)


@given(words, words)
def test_bounds(a, b):
    scores = rouge(prediction=" ".join(a), reference=" ".join(b))
    assert all(0.0 <= v <= 1.0 for v in scores.values())


@given(words)
def test_identity(a):
    text = " ".join(a)
    scores = rouge(prediction=text, reference=text)
    assert scores["rouge1"] == 1.0 and scores["rougeL"] == 1.0


def test_empty_prediction_scores_zero():
    assert rouge(prediction="", reference="fever") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
