"""What a test's JUnit XML entry carries besides pass/fail (pytest's --junitxml writes a test's
user_properties as <property> elements, also under xdist): the value, its interval, the
threshold, the verdict and, for a comparison, the difference and margin."""

from __future__ import annotations

from medgate.core.outcome import Outcome

PREFIX = "medgate."  # never the bare "medgate": that key carries the Outcome JSON to the controller


def _f(value: float) -> str:
    return f"{value:.4f}"


def junit_properties(outcome: Outcome) -> list[tuple[str, str]]:
    o = outcome
    props = [("verdict", o.status)]
    if o.value is not None:
        props.append(("value", _f(o.value)))
    if o.low is not None and o.high is not None:
        props.append(("interval", f"[{_f(o.low)}, {_f(o.high)}]"))
    if o.threshold is not None:
        props.append(("threshold", (">= " if o.higher_is_better else "<= ") + _f(o.threshold)))
    c = o.comparison
    if c is not None:
        diff, low, high = c.difference
        props += [("reference", c.reference), ("difference", f"{diff:+.4f} [{low:+.4f}, {high:+.4f}]"),
                  ("margin", _f(c.margin)), ("comparison_verdict", c.verdict), ("p_holm", f"{c.p_adjusted:.4g}")]
    return [(PREFIX + name, value) for name, value in props]
