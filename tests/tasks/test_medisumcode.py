import json

import icd10
import pytest
from hypothesis import given
from hypothesis import strategies as st

from medgate.core.errors import DataError
from medgate.core.types import Sample
from medgate.tasks import medisumcode as task
from tests.conftest import FIXTURES


def test_parse_codes_removes_dots_keeps_order_and_duplicates():
    text = "ICD-10 Codes: I21.19, E78.5, I10; also E785 and U07.1, x J18.9b, S72.001A"
    # U is excluded by the pattern; in "J18.9b" the suffix has no word boundary, so the pattern
    # backs off to the category "J18"; S72.001A keeps its 4 characters.
    assert task.parse_codes(text) == ["I2119", "E785", "I10", "E785", "J18", "S72001A"]


def test_score_hand_computed():
    gold = ["I2119", "I10", "E785"]
    predicted = ["I2119", "I10", "I10", "I219", "Z999"]
    scores = task.score_codes(predicted, gold)
    # exact: P = 3/5 (I10 twice counts twice), R = 2/3
    assert scores["exact_p"] == pytest.approx(3 / 5) and scores["exact_r"] == pytest.approx(2 / 3)
    assert scores["exact_f1"] == pytest.approx(2 * 0.6 * (2 / 3) / (0.6 + 2 / 3))
    # approximate on 3-character sets: {I21, I10, Z99} vs {I21, I10, E78}: P = R = 2/3
    assert scores["approx_p"] == pytest.approx(2 / 3) and scores["approx_r"] == pytest.approx(2 / 3)
    # valid: I2119, I10, I10 exist; I219 is a category header that exists too; Z999 does not
    expected_valid = sum(icd10.find(c) is not None for c in predicted) / 5
    assert scores["valid_ratio"] == pytest.approx(expected_valid) and scores["valid_ratio"] < 1


def test_no_prediction_scores_zero():
    assert set(task.score_codes([], ["I10"]).values()) == {0.0}


@given(st.text())
def test_parser_is_total_and_every_code_is_well_formed(text):
    for code in task.parse_codes(text):
        assert "." not in code and code[0] in "ABCDEFGHIJKLMNOPQRSTVWXYZ" and code[1:3].isdigit()


@given(st.lists(st.sampled_from(["I10", "E785", "J189", "N179"]), min_size=1, max_size=6))
def test_identity_and_bounds(codes):
    scores = task.score_codes(codes, codes)
    assert scores["exact_r"] == 1.0 and scores["approx_f1"] == 1.0 and scores["valid_ratio"] == 1.0
    assert all(0 <= v <= 1 for v in scores.values())


def test_fixture_uses_real_icd10_cm_codes_and_enough_items():
    samples = task.load_samples(FIXTURES / task.TASK.filename)
    assert len(samples) >= 20 + task.TASK.fewshot
    assert all(icd10.exists(code) for s in samples for code in s.reference)


def test_fewshot_answer_format():
    shot = Sample(id="1", fields={"text": "note"}, reference=["I10", "E785"])
    chat = task.build_prompt(Sample(id="2", fields={"text": "other"}, reference=["J189"]), [shot])
    assert chat[2] == {"role": "assistant", "content": "ICD-10 Codes: I10, E785"}
    assert "other" in chat[-1]["content"] and chat[-1]["role"] == "user"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"hadm_id": 1, "text": "t"}, "item 1, field 'icd_codes': missing field"),
        ({"hadm_id": 1, "text": "t", "icd_codes": [{"description": "x"}]}, "item 1, field 'icd_codes[0].code'"),
        ({"text": "t", "icd_codes": [{"code": "I10"}]}, "item 1, field 'hadm_id': missing field"),
        ({"hadm_id": 1, "text": "", "icd_codes": [{"code": "I10"}]}, "item 1, field 'text': empty value"),
    ],
)
def test_loader_errors_name_file_item_and_field(tmp_path, row, expected):
    path = tmp_path / "MeDiSumCode.json"
    path.write_text(json.dumps([{"hadm_id": 0, "text": "t", "icd_codes": [{"code": "I10", "description": "d"}]}, row]))
    with pytest.raises(DataError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        task.load_samples(path)


def reference_item_scores(predicted: list[str], codes: list[str]) -> dict[str, float]:
    """PROTOCOL.md's account of the reference: the gold string joined with ', ' is split on ', '
    (an empty string gives one empty "code"); P over predictions (0 when none), R over gold."""
    gold = ", ".join(codes).split(", ")

    def prf(pred, ref):
        p = sum(c in ref for c in pred) / len(pred) if pred else 0.0
        r = sum(c in pred for c in ref) / len(ref)
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    ep, er, ef = prf(predicted, gold)
    ap, ar, af = prf(list({c[:3] for c in predicted}), list({c[:3] for c in gold}))
    return {"exact_p": ep, "exact_r": er, "exact_f1": ef, "approx_p": ap, "approx_r": ar, "approx_f1": af}


@given(st.lists(st.sampled_from(["I10", "E785", "J189", "N179", "I2119"]), max_size=5),
       st.lists(st.sampled_from(["I10", "E785", "J189", "Z951"]), max_size=4, unique=True))
def test_scores_equal_the_references_including_items_without_gold_codes(predicted, gold):
    scores = task.score_codes(predicted, gold)
    assert {k: v for k, v in scores.items() if k != "valid_ratio"} == pytest.approx(reference_item_scores(predicted, gold))


def test_an_item_without_gold_codes_is_scored_and_named_in_the_notes(tmp_path):
    from medgate.core.types import ScoringConfig

    items = json.loads((FIXTURES / task.TASK.filename).read_text())
    items[5]["icd_codes"] = []
    items[9]["icd_codes"] = []
    path = tmp_path / "MeDiSumCode.json"
    path.write_text(json.dumps(items))
    samples = task.load_samples(path)  # no error: the task keeps every other item's score
    assert len(samples) == len(items) and samples[5].reference == [] and samples[5].fields["raw"]["codes"] == ""
    batch = task.TASK.score_all(["ICD-10 Codes: I10, E785"] * len(samples), samples, ScoringConfig())
    assert batch.per_item[5] == {"exact_p": 0.0, "exact_r": 0.0, "exact_f1": 0.0, "approx_p": 0.0, "approx_r": 0.0,
                                 "approx_f1": 0.0, "valid_ratio": 1.0}
    assert batch.notes["no_gold_codes"].endswith(f": {samples[5].id}, {samples[9].id}")
    assert batch.notes["no_gold_codes"].startswith("2 item(s) without gold codes, scored as the reference scores them")
    full = task.TASK.score_all(["x"], samples[:1], ScoringConfig())
    assert "no_gold_codes" not in full.notes
