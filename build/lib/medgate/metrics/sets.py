"""Precision, recall and F1 of predicted against gold items, as CLUE computes them for ICD
codes and UMLS concepts."""

from __future__ import annotations

from typing import Collection, NamedTuple


class PRF(NamedTuple):
    precision: float
    recall: float
    f1: float


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def prf(predicted: Collection[str], gold: Collection[str]) -> PRF:
    """Precision = predicted items found in gold / number predicted (0 when none predicted);
    recall = gold items found in predicted / number of gold items (0 when there are none).

    Lists keep duplicates as the reference does (a repeated wrong code costs twice); pass sets
    for the set-based variants.
    """
    predicted_set, gold_set = set(predicted), set(gold)
    precision = sum(p in gold_set for p in predicted) / len(predicted) if predicted else 0.0
    recall = sum(g in predicted_set for g in gold) / len(gold) if gold else 0.0
    return PRF(precision, recall, f1(precision, recall))
