"""The published CLUE figures, and a view that puts a model's stored values next to them.

The figures are those of the CLUE repository's README of April 2024 (PROTOCOL.md, "Published
reference points"), in percent. They were measured with the reference's early prompts, which are
not necessarily the prompts of a later checkout of its evaluation code, and with the paper's
sampling, data and encoder. A medgate value is comparable only when it was measured on all of
the real data, with SciBERT for BERTScore, and ideally with the reference's prompts; the view
says which of these a value lacks, by the rule every report shares (core/comparable.py).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from medgate.core.comparable import Conditions, Like, differences, measured_on
from medgate.core.io import atomic_write
from medgate.core.outcome import Outcome
from medgate.reporting.table import load_runs, tabled

SOURCE = "CLUE repository README (TIO-IKIM/CLUE), April 2024"
PROMPTS = "the reference's early prompts (April 2024)"
# What the published figures were measured on, as far as a stored value can show it: all of the
# real data, the reference's prompts, SciBERT (known by name only). Sampling differs anyway.
MEASURED_ON = Conditions(data_source="user", limit=None, prompts="reference",
                         encoder=Like("scibert", "recognisably SciBERT"))
CHECKED = ("data_source", "limit", "prompts", "encoder")

# published model name -> (task, metric) -> percent
FIGURES: dict[str, dict[tuple[str, str], float]] = {
    "meditron-7b": {("mednli", "accuracy"): 2.39, ("meqsum", "rougeL"): 6.17, ("meqsum", "bertscore_f1"): 40.53},
    "meditron-70b": {("mednli", "accuracy"): 63.52},
    "Mistral-7B-Instruct-v0.1": {("mednli", "accuracy"): 64.79, ("meqsum", "rougeL"): 21.85,
                                 ("meqsum", "bertscore_f1"): 66.15},
    "BioMistral-7B": {("mednli", "accuracy"): 62.32, ("meqsum", "rougeL"): 24.58, ("meqsum", "bertscore_f1"): 67.05,
                      ("medisumcode", "exact_f1"): 0.65, ("medisumcode", "approx_f1"): 4.57,
                      ("medisumcode", "valid_ratio"): 27.88, ("longhealth", "accuracy_task1"): 28.55},
    "Mixtral-8x7B-Instruct": {("mednli", "accuracy"): 76.48, ("meqsum", "rougeL"): 32.47,
                              ("meqsum", "bertscore_f1"): 72.8,
                              ("medisumcode", "exact_f1"): 10.49, ("medisumcode", "approx_f1"): 28.99,
                              ("medisumcode", "valid_ratio"): 82.87, ("longhealth", "accuracy_task1"): 74.25},
}

HEADER = ["model", "published as", "task", "metric", "medgate %", "95% CI %", "published %", "difference",
          "published inside CI", "medgate prompts", "not comparable because"]


@dataclass(frozen=True)
class Row:
    model: str
    published_as: str
    task: str
    metric: str
    published: float
    outcome: Outcome | None  # None: this run has no value for it

    def cells(self) -> list[str]:
        o = self.outcome
        if o is None or o.value is None:
            return [self.model, self.published_as, self.task, self.metric, "-", "-", f"{self.published:.2f}", "-", "-",
                    "-", "not run"]
        value = 100 * o.value
        interval = inside = "-"
        if o.low is not None and o.high is not None:
            interval = f"{100 * o.low:.2f}-{100 * o.high:.2f}"
            inside = "yes" if 100 * o.low <= self.published <= 100 * o.high else "no"
        return [self.model, self.published_as, self.task, self.metric, f"{value:.2f}", interval,
                f"{self.published:.2f}", f"{value - self.published:+.2f}", inside, prompts_of(o),
                "; ".join(caveats(o)) or "-"]


def prompts_of(outcome: Outcome) -> str:
    prov = outcome.provenance
    if prov.get("prompts") == "reference":
        return f"reference @ {str(prov.get('reference_commit', '?'))[:12]}"
    return "medgate's own"


def caveats(outcome: Outcome) -> list[str]:
    """Why a value cannot be set beside the published figure as a reproduction."""
    return differences(measured_on(outcome), MEASURED_ON, fields=CHECKED)


def unknown_names(mapping: Mapping[str, str]) -> dict[str, str]:
    """Models whose ``published`` name has no published figures."""
    return {model: name for model, name in mapping.items() if name not in FIGURES}


def most_comparable(reports_dir: Path) -> dict[tuple[str, str, str], Outcome]:
    """Per (model, task, metric), the stored value with the fewest caveats, the newest of those:
    a later run on synthetic data or a subset does not hide a full run on the real data."""
    best: dict[tuple[str, str, str], tuple[int, Outcome]] = {}
    for run in load_runs(reports_dir):  # newest first: an equal count keeps the newer
        for o in filter(tabled, run.outcomes):
            key, count = (o.model, o.task, o.metric), len(caveats(o))
            if key not in best or count < best[key][0]:
                best[key] = (count, o)
    return {key: o for key, (_, o) in best.items()}


def reproduction_rows(reports_dir: Path, mapping: Mapping[str, str]) -> list[Row]:
    """For each model mapped to a published name, every published figure of that name beside the
    model's most comparable stored value (and interval) of the same task and metric."""
    chosen = most_comparable(reports_dir)
    rows = []
    for model, name in sorted(mapping.items()):
        for (task, metric), published in FIGURES.get(name, {}).items():
            rows.append(Row(model, name, task, metric, published, chosen.get((model, task, metric))))
    return rows


def write_reproduction(reports_dir: Path, rows: Sequence[Row]) -> tuple[Path, Path]:
    """reports/reproduction.md and .csv."""
    cells = [row.cells() for row in rows]
    lines = [
        "# medgate beside the published CLUE figures", "",
        f"Published figures: {SOURCE}, measured with {PROMPTS}, the engine's default sampling and SciBERT "
        "for BERTScore. medgate: of each model, task and metric the stored value with the fewest reasons in the "
        "last column (the newest of those), with its 95% bootstrap interval, all in percent. Even a run on the "
        "real data with `--prompts reference:DIR` and SciBERT may use "
        "later prompts than the published figures did, and decodes greedily.", "",
        "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER),
        *["| " + " | ".join(row) + " |" for row in cells],
    ]
    if not rows:
        lines += ["", "No model is mapped to a published name: set `published = \"...\"` in models.toml "
                      f"(published names: {', '.join(FIGURES)})."]
    md = atomic_write(reports_dir / "reproduction.md", "\n".join(lines) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(cells)
    return md, atomic_write(reports_dir / "reproduction.csv", buffer.getvalue())
