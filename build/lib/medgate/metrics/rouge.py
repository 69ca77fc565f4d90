"""ROUGE-1/2/L F-measures with Google's rouge-score package, as CLUE runs it (no stemmer)."""

from __future__ import annotations

from functools import lru_cache

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@lru_cache(maxsize=1)
def _scorer():  # type: ignore[no-untyped-def]
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)


def rouge(*, prediction: str, reference: str) -> dict[str, float]:
    """F-measure per ROUGE type. rouge-score takes the reference first: keyword-only here."""
    scores = _scorer().score(reference, prediction)
    return {name: float(scores[name].fmeasure) for name in ROUGE_TYPES}
