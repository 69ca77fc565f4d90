"""Scoring of free-text answers (MeQSum, Problem Summary, MeDiSumQA): ROUGE, BERTScore and,
where the task asks for it, UMLS concept F1."""

from __future__ import annotations

from typing import Sequence

from medgate.metrics.bertscore import bertscore, resolve_encoder
from medgate.metrics.rouge import ROUGE_TYPES, rouge
from medgate.metrics.umls import UMLS_METRICS, load_scispacy, umls_scores
from medgate.tasks.base import BatchScores, MetricSpec, ScoringConfig

BERTSCORE_METRICS = ("bertscore_p", "bertscore_r", "bertscore_f1")


def text_metrics(*, with_umls: bool) -> dict[str, MetricSpec]:
    names = {
        "rouge1": "ROUGE-1 F-measure", "rouge2": "ROUGE-2 F-measure", "rougeL": "ROUGE-L F-measure",
        "bertscore_p": "BERTScore precision", "bertscore_r": "BERTScore recall", "bertscore_f1": "BERTScore F1",
    }
    if with_umls:
        names.update(umls_p="UMLS concept precision", umls_r="UMLS concept recall", umls_f1="UMLS concept F1")
    # BERTScore without baseline rescaling is a cosine: in [-1, 1], though near 1 in practice.
    return {
        name: MetricSpec(name, text, bounds=(-1.0, 1.0) if name.startswith("bertscore") else (0.0, 1.0))
        for name, text in names.items()
    }


def score_texts(predictions: Sequence[str], references: Sequence[str], scoring: ScoringConfig, *,
                with_umls: bool) -> BatchScores:
    per_item = [rouge(prediction=p, reference=r) for p, r in zip(predictions, references)]
    encoder = resolve_encoder(scoring.bertscore_encoder, scoring.bertscore_layers)
    for scores, extra in zip(per_item, bertscore(predictions, references, encoder, scoring.cache_path)):
        scores.update(extra)
    notes = {"bertscore_encoder": encoder.describe(), "rouge": "rouge-score, no stemmer, F-measure"}
    not_computed: dict[str, str] = {}
    if with_umls:
        loaded = load_scispacy()
        if isinstance(loaded, str):
            not_computed = {name: loaded for name in UMLS_METRICS}
        else:
            nlp, canonical = loaded
            for scores, extra in zip(per_item, umls_scores(predictions, references, nlp, canonical)):
                scores.update(extra)
    assert all(set(ROUGE_TYPES) <= set(s) for s in per_item)
    return BatchScores(per_item=per_item, not_computed=not_computed, notes=notes)
