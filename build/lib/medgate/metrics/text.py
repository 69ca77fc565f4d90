"""Scoring of free-text answers (MeQSum, Problem Summary, MeDiSumQA): ROUGE, BERTScore and,
where the task asks for it, UMLS concept F1."""

from __future__ import annotations

from typing import Sequence

from medgate.core.types import BatchScores, MetricSpec, ScoringConfig
from medgate.metrics.bertscore import BERTSCORE_METRICS, bertscore, resolve_encoder
from medgate.metrics.rouge import ROUGE_TYPES, rouge
from medgate.metrics.umls import UMLS_METRICS, load_scispacy, umls_scores


def text_metrics(*, with_umls: bool) -> dict[str, MetricSpec]:
    names = [*ROUGE_TYPES, *BERTSCORE_METRICS, *(UMLS_METRICS if with_umls else ())]
    # BERTScore without baseline rescaling is a cosine: in [-1, 1], though near 1 in practice.
    return {name: MetricSpec(name, bounds=(-1.0, 1.0), margin=0.01) if name in BERTSCORE_METRICS else MetricSpec(name)
            for name in names}


def score_texts(predictions: Sequence[str], references: Sequence[str], scoring: ScoringConfig, *,
                with_umls: bool) -> BatchScores:
    per_item = [rouge(prediction=p, reference=r) for p, r in zip(predictions, references)]
    if not scoring.model_metrics:  # ROUGE only: no encoder, no scispaCy
        skipped = "model-based metrics were not asked for (ROUGE only)"
        names = [*BERTSCORE_METRICS, *(UMLS_METRICS if with_umls else ())]
        return BatchScores(per_item=per_item, not_computed={name: skipped for name in names},
                           notes={"rouge": "rouge-score, no stemmer, F-measure"})
    encoder = resolve_encoder(scoring.bertscore_encoder, scoring.bertscore_layers)
    for scores, extra in zip(per_item, bertscore(predictions, references, encoder, scoring.store)):
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
    return BatchScores(per_item=per_item, not_computed=not_computed, notes=notes)
