"""Label answers (classification tasks): is the gold label the model's answer, and did it name
any label at all. Two rules:

- ``mednli``: the reference code's rule, kept as it is: correct when the upper-cased gold label
  occurs exactly once in the upper-cased output (so "NOT ENTAILMENT" counts as entailment and a
  repeated label scores 0); no label when no label occurs anywhere in it.
- ``first``: the answer is the label that occurs first in the output, as a whole word and
  ignoring case (at one position the longest label wins: "NOT ENTAILMENT" before "ENTAILMENT");
  correct when that label is the gold one; no label when none occurs.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

RULES = ("mednli", "first")
LABEL_METRICS = ("accuracy", "no_label_rate")


@lru_cache(maxsize=64)
def _label_pattern(labels: tuple[str, ...]) -> re.Pattern[str]:
    ordered = sorted(labels, key=len, reverse=True)  # longest first: alternation takes the first that matches
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, ordered)) + r")(?!\w)", re.IGNORECASE)


def first_label(output: str, labels: Sequence[str]) -> str | None:
    """The label (as given in ``labels``) that occurs first in ``output``, or None."""
    match = _label_pattern(tuple(labels)).search(output)
    if match is None:
        return None
    found = match.group(0).upper()
    return next(label for label in labels if label.upper() == found)


def label_scores(output: str, gold: str, labels: Sequence[str], rule: str = "mednli") -> dict[str, float]:
    """``accuracy`` (1 when the output's answer is ``gold``) and ``no_label_rate`` (1 when it names
    no label) of one output, by ``rule``."""
    if rule == "mednli":
        upper = output.upper()
        correct = upper.count(gold.upper()) == 1
        no_label = not any(label.upper() in upper for label in labels)
    elif rule == "first":
        answer = first_label(output, labels)
        correct = answer is not None and answer.upper() == gold.upper()
        no_label = answer is None
    else:
        raise ValueError(f"unknown label rule {rule!r} (known: {', '.join(RULES)})")
    return {"accuracy": float(correct), "no_label_rate": float(no_label)}
