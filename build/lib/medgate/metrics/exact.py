"""Exact match of an answer with its reference, after the normalisation a task asks for."""

from __future__ import annotations

import unicodedata


def normalise(text: str, *, ignore_case: bool = True, ignore_whitespace: bool = True,
              ignore_punctuation: bool = False) -> str:
    """``text`` as exact match compares it: punctuation (Unicode category P*) dropped, case folded,
    surrounding whitespace stripped and inner runs of whitespace made one space, each if asked."""
    if ignore_punctuation:
        text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    if ignore_case:
        text = text.casefold()
    if ignore_whitespace:
        text = " ".join(text.split())
    return text


def exact_match(prediction: str, reference: str, *, ignore_case: bool = True, ignore_whitespace: bool = True,
                ignore_punctuation: bool = False) -> float:
    """1.0 when the normalised texts are equal, else 0.0."""
    options = {"ignore_case": ignore_case, "ignore_whitespace": ignore_whitespace,
               "ignore_punctuation": ignore_punctuation}
    return float(normalise(prediction, **options) == normalise(reference, **options))
