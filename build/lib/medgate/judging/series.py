"""Checkpoints of one fine-tuning run judged against one reference as one family: Holm across
every checkpoint and metric, so that picking the best of many checkpoints does not make a gain
that is chance look real. Pure."""

from __future__ import annotations

from typing import Sequence

from medgate.core.errors import ConfigError
from medgate.core.outcome import Comparison
from medgate.judging.paired import ALPHA, judge
from medgate.metrics.stats import holm


def holm_across(comparisons: Sequence[Comparison]) -> list[float]:
    """Holm-adjusted p-values over all the comparisons given (every checkpoint's every metric),
    in the input order."""
    return holm([c.p_value for c in comparisons])


def rejudge_across(comparisons: Sequence[Comparison], alpha: float = ALPHA) -> list[Comparison]:
    """Judged comparisons judged again with one Holm family spanning them all, each keeping its
    rule and margin (a checkpoint's metric has the one rule and margin of the series)."""
    rules: dict[tuple[str, str], tuple[str, float]] = {}
    for c in comparisons:
        if not c.rule:
            raise ValueError(f"{c.task} {c.metric} vs {c.reference}: not judged yet (no rule); judge it first")
        known = rules.setdefault((c.task, c.metric), (c.rule, c.margin))
        if known != (c.rule, c.margin):
            raise ConfigError(f"{c.task} {c.metric}: the checkpoints compared with {c.reference} use different rules "
                              f"or margins ({known[0]} {known[1]:g} and {c.rule} {c.margin:g}); one family needs one "
                              f"margin per metric: set it once in models.toml (inherit it)")
    return judge(comparisons, lambda task, metric: rules[(task, metric)], alpha)
