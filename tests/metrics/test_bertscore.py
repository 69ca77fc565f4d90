import pytest

from medgate.core.errors import ConfigError
from medgate.metrics.bertscore import PAPER_ENCODER, bertscore, packaged_minilm, resolve_encoder


def test_default_encoder_is_the_packaged_minilm_on_its_last_layer():
    encoder = resolve_encoder()
    assert encoder.model == str(packaged_minilm()) and encoder.num_layers == 6
    assert "layer 6" in encoder.describe() and "no idf" in encoder.describe()


def test_paper_encoder_defaults_to_layer_8_and_unknown_hub_needs_a_layer():
    assert resolve_encoder(PAPER_ENCODER).num_layers == 8
    with pytest.raises(ConfigError, match="give its layer"):
        resolve_encoder("someone/some-encoder")
    assert resolve_encoder("someone/some-encoder", 4).num_layers == 4


def test_scores_offline_identity_order_and_empty_prediction():
    encoder = resolve_encoder()
    refs = ["The patient has community-acquired pneumonia.", "Stop ibuprofen and take acetaminophen."]
    same = bertscore(refs, refs, encoder)
    assert all(s["bertscore_f1"] == pytest.approx(1.0, abs=1e-4) for s in same)
    scored = bertscore(["Pneumonia in the right lung.", ""], refs, encoder)
    assert 0.0 < scored[0]["bertscore_f1"] < 1.0
    assert scored[1] == {"bertscore_p": 0.0, "bertscore_r": 0.0, "bertscore_f1": 0.0}
    related = bertscore(["The patient has pneumonia."], refs[:1], encoder)[0]["bertscore_f1"]
    unrelated = bertscore(["The invoice is due on Friday."], refs[:1], encoder)[0]["bertscore_f1"]
    assert related > unrelated


def test_scores_are_cached_per_pair_and_keyed_by_the_encoder(tmp_path, monkeypatch):
    import medgate.metrics.bertscore as module
    from medgate.metrics.bertscore import Encoder

    class DictStore:  # the ScoreStore protocol; the pipeline hands in its SQLite cache
        def __init__(self):
            self.rows = {}

        def get_scores(self, keys):
            return {k: self.rows[k] for k in keys if k in self.rows}

        def put_scores(self, entries):
            self.rows.update(entries)

    encoder, db = resolve_encoder(), DictStore()
    preds = ["Pneumonia in the right lung.", "", "Take acetaminophen instead."]
    refs = ["The patient has community-acquired pneumonia.", "Any reference.", "Stop ibuprofen and take acetaminophen."]
    fresh = bertscore(preds, refs, encoder, db)
    assert fresh == bertscore(preds, refs, encoder)  # caching does not change a score
    computed: list[list[str]] = []
    real = module._compute

    def counting(p, r, e):
        computed.append(list(p))
        return real(p, r, e)

    monkeypatch.setattr(module, "_compute", counting)
    assert bertscore(preds, refs, encoder, db) == fresh and computed == []  # every pair from the cache
    # one new pair: only it is encoded
    bertscore([preds[0], "Acetaminophen only."], [refs[0], refs[2]], encoder, db)
    assert computed == [["Acetaminophen only."]]
    # another layer of the same encoder is another metric: nothing reused
    bertscore(preds, refs, Encoder(encoder.model, 3, encoder.label), db)
    assert computed[-1] == [preds[0], preds[2]]


# -- the 512-token cut, on an encoder whose tokenizer reports no max length (SciBERT's layout) --------

WORDS = [f"w{i}" for i in range(60)]


@pytest.fixture(scope="module")
def no_max_length_encoder(tmp_path_factory):
    """A tiny BERT saved with transformers; its tokenizer files carry no model_max_length, so
    transformers reports its huge default, as it does for SciBERT."""
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("scibert_layout")
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    (folder / "tokenizer_config.json").write_text('{"do_lower_case": true, "tokenizer_class": "BertTokenizer"}')
    torch.manual_seed(0)
    config = BertConfig(vocab_size=5 + len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(folder)
    return folder


def long_text(n: int, offset: int = 0) -> str:
    return " ".join(WORDS[(i * 7 + offset) % len(WORDS)] for i in range(n))


def test_the_tokenizer_reports_no_usable_max_length_and_stock_bert_score_fails(no_max_length_encoder):
    import bert_score
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(no_max_length_encoder)).model_max_length > 1e20
    with pytest.raises(OverflowError):  # what `--bertscore-encoder allenai/scibert_scivocab_uncased` did
        bert_score.score([long_text(20)], [long_text(20, 3)], model_type=str(no_max_length_encoder), num_layers=2)


def test_long_texts_are_cut_at_512_tokens_whatever_the_tokenizer_reports(no_max_length_encoder):
    encoder = resolve_encoder(str(no_max_length_encoder))
    assert encoder.num_layers == 2 and "cut at 512 tokens" in encoder.describe()
    prediction, reference = long_text(900), long_text(700, 3)  # one word is one token here
    (scores,) = bertscore([prediction], [reference], encoder)
    assert 0.0 < scores["bertscore_f1"] < 1.0
    # the same texts cut by hand to 510 words (+ [CLS] and [SEP] = 512 tokens) score the same
    (by_hand,) = bertscore([long_text(510)], [long_text(510, 3)], encoder)
    assert scores == pytest.approx(by_hand, abs=1e-6)
    # and the cut matters: 400 words is another text
    (shorter,) = bertscore([long_text(400)], [long_text(400, 3)], encoder)
    assert shorter["bertscore_f1"] != pytest.approx(scores["bertscore_f1"], abs=1e-6)


def test_precision_and_recall_are_not_swapped():
    """BERTScore is asymmetric: precision matches each candidate token to the reference, recall each
    reference token to the candidate. A short candidate inside a long reference: every candidate
    token has its match, most reference tokens have none, so precision > recall; swapping the two
    texts swaps the two scores."""
    encoder = resolve_encoder()
    short = "pneumonia"
    long = "The patient was admitted with pneumonia and treated with intravenous antibiotics for five days."
    inside = bertscore([short], [long], encoder)[0]
    assert inside["bertscore_p"] > inside["bertscore_r"] + 0.1
    swapped = bertscore([long], [short], encoder)[0]
    assert swapped["bertscore_p"] == pytest.approx(inside["bertscore_r"], abs=1e-5)
    assert swapped["bertscore_r"] == pytest.approx(inside["bertscore_p"], abs=1e-5)
    p, r = inside["bertscore_p"], inside["bertscore_r"]
    assert inside["bertscore_f1"] == pytest.approx(2 * p * r / (p + r), abs=1e-6)


def test_medgates_path_matches_stock_bert_score_on_the_same_encoder():
    """medgate calls bert-score's internals (to cut inputs at 512 tokens); on texts well below that
    cut it must give what stock ``bert_score.score`` gives with the same encoder and layer."""
    from bert_score import score

    encoder = resolve_encoder()
    candidates = ["Pneumonia in the right lung.", "pneumonia", "Stop ibuprofen; start acetaminophen 500 mg.",
                  "The invoice is due on Friday."]
    references = ["The patient has community-acquired pneumonia.",
                  "The patient was admitted with pneumonia and treated with antibiotics.",
                  "Stop ibuprofen and take acetaminophen.", "Chest pain radiating to the left arm."]
    ours = bertscore(candidates, references, encoder)
    p, r, f = score(candidates, references, model_type=encoder.model, num_layers=encoder.num_layers, idf=False,
                    rescale_with_baseline=False, device="cpu", batch_size=2)
    for i, item in enumerate(ours):
        assert (item["bertscore_p"], item["bertscore_r"], item["bertscore_f1"]) == pytest.approx(
            (float(p[i]), float(r[i]), float(f[i])), abs=1e-5)
    assert len({round(item["bertscore_f1"], 4) for item in ours}) == 4  # four different pairs, four different scores
