"""The metric catalogue of task files: each ``[metrics.<kind>]`` table becomes the metrics it
declares, scored with medgate's own metric functions (the ones the built-in tasks use).

| kind           | parameters                                               | metrics                               |
|----------------|----------------------------------------------------------|---------------------------------------|
| label_accuracy | labels (required), rule = "first" / "mednli"             | accuracy, no_label_rate               |
| exact_match    | ignore_case, ignore_whitespace, ignore_punctuation       | exact_match                           |
| rouge          | types (subset of rouge1, rouge2, rougeL)                 | rouge1, rouge2, rougeL                |
| bertscore      | (the run's encoder)                                      | bertscore_p, bertscore_r, bertscore_f1|
| set            | separator (required), ignore_case                        | set_p, set_r, set_f1                  |
| icd10          | separator of the reference's codes                       | exact_/approx_ p, r, f1, valid_ratio  |

Every kind also takes ``extract``: a regular expression applied to the output first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from medgate.core.types import MetricSpec, Sample, ScoringConfig
from medgate.metrics.bertscore import BERTSCORE_METRICS, bertscore, resolve_encoder
from medgate.metrics.exact import exact_match
from medgate.metrics.labels import label_scores
from medgate.metrics.rouge import ROUGE_TYPES, rouge
from medgate.metrics.sets import prf
from medgate.metrics.text import text_metrics
from medgate.tasks.medisumcode import METRICS as ICD10_METRICS
from medgate.tasks.medisumcode import gold_code, parse_codes, score_codes

KINDS = ("label_accuracy", "exact_match", "rouge", "bertscore", "set", "icd10")
SET_METRICS = ("set_p", "set_r", "set_f1")

# what a metric may make of an item's reference when the data is read (the labels checked, the
# gold codes parsed), raising ValueError for a bad value, or DataError naming the cell itself
Gold = Callable[[str, Path, str, str], Any]


@dataclass(frozen=True)
class Metric:
    """One ``[metrics.<kind>]`` table: its metric specs, how it scores, and its reference check."""

    kind: str
    specs: dict[str, MetricSpec]
    score: Callable[[str, Sample], dict[str, float]] | None = None  # one (extracted) output
    score_all: Callable[[Sequence[str], Sequence[Sample], ScoringConfig], tuple[list[dict[str, float]],
                                                                                dict[str, str]]] | None = None
    gold: Gold | None = None
    extract: re.Pattern[str] | None = None
    notes: dict[str, str] = field(default_factory=dict)

    def answer(self, output: str) -> str:
        return output if self.extract is None else extract_answer(self.extract, output)


def extract_answer(pattern: re.Pattern[str], output: str) -> str:
    """The part of ``output`` a metric scores: the group named ``answer``, else the first group,
    else the whole first match; "" when the pattern does not match (an answer not given)."""
    match = pattern.search(output)
    if match is None:
        return ""
    if "answer" in pattern.groupindex:
        return match.group("answer") or ""
    return (match.group(1) or "") if pattern.groups else match.group(0)


def gold_of(sample: Sample, kind: str) -> Any:
    return sample.fields["gold"][kind]


def build_metric(kind: str, params: Mapping[str, Any], extract: re.Pattern[str] | None = None) -> Metric:
    """The metric of one schema-checked ``[metrics.<kind>]`` table, scoring what ``extract`` finds."""
    metric = _BUILDERS[kind](params)
    if extract is None:
        return metric
    return replace(metric, extract=extract, notes={**metric.notes, f"{kind}_extract": f"answers extracted with "
                                                                                      f"/{extract.pattern}/"})


def _labels(params: Mapping[str, Any]) -> Metric:
    labels, rule = tuple(params["labels"]), params.get("rule", "first")
    upper = {label.upper() for label in labels}

    def gold(reference: str, path: Path, item: str, column: str) -> str:
        if reference.upper() not in upper:
            raise ValueError(f"{reference!r} is not one of the labels {', '.join(labels)}")
        return reference

    return Metric(
        kind="label_accuracy",
        specs={"accuracy": MetricSpec("accuracy", binary=True),
               "no_label_rate": MetricSpec("no_label_rate", higher_is_better=False, binary=True)},
        score=lambda output, sample: label_scores(output, str(sample.reference), labels, rule=rule),
        gold=gold,
        notes={"label_accuracy": f"rule {rule!r} over the labels {', '.join(labels)}"},
    )


def _exact(params: Mapping[str, Any]) -> Metric:
    options = {name: params.get(name, default) for name, default in
               (("ignore_case", True), ("ignore_whitespace", True), ("ignore_punctuation", False))}
    return Metric(
        kind="exact_match",
        specs={"exact_match": MetricSpec("exact_match", binary=True)},
        score=lambda output, sample: {"exact_match": exact_match(output, str(sample.reference), **options)},
        notes={"exact_match": ", ".join(f"{name} {str(value).lower()}" for name, value in options.items())},
    )


def _rouge(params: Mapping[str, Any]) -> Metric:
    types = [t for t in ROUGE_TYPES if t in params.get("types", ROUGE_TYPES)]
    specs = text_metrics(with_umls=False)  # the built-in text tasks' specs, so that gates read alike

    def score(output: str, sample: Sample) -> dict[str, float]:
        scores = rouge(prediction=output, reference=str(sample.reference))
        return {name: scores[name] for name in types}

    return Metric(kind="rouge", specs={name: specs[name] for name in types}, score=score,
                  notes={"rouge": "rouge-score, no stemmer, F-measure"})


def _bertscore(params: Mapping[str, Any]) -> Metric:
    specs = text_metrics(with_umls=False)

    def score_all(outputs: Sequence[str], samples: Sequence[Sample],
                  scoring: ScoringConfig) -> tuple[list[dict[str, float]], dict[str, str]]:
        encoder = resolve_encoder(scoring.bertscore_encoder, scoring.bertscore_layers)
        scores = bertscore(list(outputs), [str(s.reference) for s in samples], encoder, scoring.store)
        return scores, {"bertscore_encoder": encoder.describe()}

    return Metric(kind="bertscore", specs={name: specs[name] for name in BERTSCORE_METRICS}, score_all=score_all)


def _set(params: Mapping[str, Any]) -> Metric:
    separator, ignore_case = params["separator"], params.get("ignore_case", True)

    def items(text: str) -> set[str]:
        parts = (part.strip() for part in text.split(separator))
        return {part.casefold() if ignore_case else part for part in parts if part}

    def gold(reference: str, path: Path, item: str, column: str) -> set[str]:
        found = items(reference)
        if not found:
            raise ValueError(f"no items in {reference!r} when split at {separator!r}")
        return found

    def score(output: str, sample: Sample) -> dict[str, float]:
        result = prf(items(output), gold_of(sample, "set"))
        return dict(zip(SET_METRICS, result))

    return Metric(kind="set", specs={name: MetricSpec(name) for name in SET_METRICS}, score=score, gold=gold,
                  notes={"set": f"items split at {separator!r}, {'ignoring' if ignore_case else 'keeping'} case"})


def _icd10(params: Mapping[str, Any]) -> Metric:
    separator = params.get("separator", ",")

    def gold(reference: str, path: Path, item: str, column: str) -> list[str]:
        # gold_code names the item as given: "line 7" here
        codes = [gold_code(path, raw, item, column)  # type: ignore[arg-type]
                 for raw in reference.split(separator) if raw.strip()]
        if not codes:
            raise ValueError(f"no ICD-10 codes in {reference!r} when split at {separator!r}")
        return codes

    return Metric(kind="icd10", specs={name: MetricSpec(name) for name in ICD10_METRICS},
                  score=lambda output, sample: score_codes(parse_codes(output), gold_of(sample, "icd10")), gold=gold,
                  notes={"icd10": "codes parsed and scored as MeDiSumCode scores them"})


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], Metric]] = {
    "label_accuracy": _labels, "exact_match": _exact, "rouge": _rouge, "bertscore": _bertscore, "set": _set,
    "icd10": _icd10,
}
assert tuple(_BUILDERS) == KINDS
