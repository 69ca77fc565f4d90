import pytest
from hypothesis import given
from hypothesis import strategies as st

from medgate.metrics.sets import f1, prf

codes = st.lists(st.sampled_from(["A01", "B02", "C03", "D04", "E05", "F06"]), max_size=8)


@pytest.mark.parametrize(
    ("predicted", "gold", "expected"),
    [
        (["A", "B"], ["A", "C"], (0.5, 0.5, 0.5)),
        (["A", "A", "B"], ["A"], (2 / 3, 1.0, 0.8)),  # duplicates count in precision, as in the reference
        ([], ["A"], (0.0, 0.0, 0.0)),  # nothing predicted: precision 0
        (["A"], [], (0.0, 0.0, 0.0)),
        (["A", "B", "C", "D"], ["A"], (0.25, 1.0, 0.4)),
    ],
)
def test_hand_computed(predicted, gold, expected):
    assert prf(predicted, gold) == pytest.approx(expected)


@given(codes, codes)
def test_bounds_and_f1_between_p_and_r(predicted, gold):
    p, r, f = prf(predicted, gold)
    assert 0 <= p <= 1 and 0 <= r <= 1 and 0 <= f <= 1
    assert min(p, r) - 1e-12 <= f <= max(p, r) + 1e-12
    assert f == pytest.approx(f1(p, r))


@given(codes.filter(bool))
def test_identity_scores_one(items):
    assert prf(items, items) == (1.0, 1.0, 1.0)


@given(codes, codes, st.randoms())
def test_permutation_invariance(predicted, gold, rnd):
    shuffled_p, shuffled_g = list(predicted), list(gold)
    rnd.shuffle(shuffled_p)
    rnd.shuffle(shuffled_g)
    assert prf(shuffled_p, shuffled_g) == pytest.approx(prf(predicted, gold))
    assert prf(set(shuffled_p), set(shuffled_g)) == pytest.approx(prf(set(predicted), set(gold)))
