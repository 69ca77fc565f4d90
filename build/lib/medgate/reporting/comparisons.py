"""Model-against-model reports: for each candidate and reference, a table laid out like the
paper's domain-vs-general table (reference, candidate, difference with its 95% interval, margin,
verdict, flips), as Markdown and CSV, and a forest plot of the differences with their margins.
Ids of flipped items only; never item text."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from medgate.core.io import atomic_write
from medgate.core.outcome import Outcome
from medgate.reporting.charts import pyplot, save_chart
from medgate.reporting.markdown import table

HEADER = ["task", "metric", "reference", "candidate", "difference [95% CI]", "margin", "verdict", "worse / better items",
          "Holm p"]


def compared(outcomes: Sequence[Outcome]) -> dict[tuple[str, str], list[Outcome]]:
    """(candidate, reference) -> its comparison outcomes, sorted by task and metric."""
    pairs: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        if o.against is not None:
            pairs.setdefault((o.model, o.against), []).append(o)
    return {k: sorted(v, key=lambda o: (o.task, o.metric)) for k, v in sorted(pairs.items())}


def rows(outcomes: Sequence[Outcome]) -> list[list[str]]:
    out = []
    for o in outcomes:
        c = o.comparison
        if c is None:  # errored, skipped or not computed: the status says why
            out.append([o.task, o.metric, "-", _f(o.value), "-", "-", o.status.replace("_", " "), "-", "-"])
            continue
        diff, low, high = c.difference
        verdict = c.verdict + (" (xfail)" if o.status == "known_gap" else "")
        out.append([o.task, o.metric, _f(c.reference_value), _f(c.candidate_value), f"{diff:+.4f} [{low:+.4f}, {high:+.4f}]",
                    _f(c.margin), verdict, f"{c.n_worse} / {c.n_better}", f"{c.p_adjusted:.3g}"])
    return out


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@dataclass(frozen=True)
class Section:
    """One candidate against one reference: what summary.md, the CI step summary and the
    pull-request comment each show of it (the comment may cut its rows)."""

    candidate: str
    reference: str
    preface: list[str]  # lines before the table (inherited settings)
    rows: list[list[str]]


def sections(outcomes: Sequence[Outcome]) -> list[Section]:
    out = []
    for (candidate, reference), group in compared(outcomes).items():
        inherited = next((o.provenance.get("inherits") for o in group if o.provenance.get("inherits")), None)
        preface = []
        if inherited:
            preface = [f"{candidate} took its engine settings, chat template, thresholds and margins from {inherited}; "
                       f"its own fingerprint: {next((o.provenance.get('model_fingerprint') for o in group), '?')}."]
        out.append(Section(candidate, reference, preface, rows(group)))
    return out


def summary_lines(outcomes: Sequence[Outcome]) -> list[str]:
    """The comparison section of summary.md."""
    lines: list[str] = []
    for section in sections(outcomes):
        lines += ["", f"### {section.candidate} vs {section.reference}", ""]
        if section.preface:
            lines += [*section.preface, ""]
        lines += table(HEADER, section.rows)
    return ["## Comparisons", *lines] if lines else []


def write_comparisons(reports_dir: Path, outcomes: Sequence[Outcome]) -> list[Path]:
    """reports/comparisons/<candidate>-vs-<reference>.md, .csv and .png for each pair."""
    written = []
    for (candidate, reference), group in compared(outcomes).items():
        stem = reports_dir / "comparisons" / f"{candidate}-vs-{reference}"
        cells = rows(group)
        md = [f"# {candidate} vs {reference}", "",
              "Difference = candidate - reference (95% interval); a comparison fails when the candidate is worse "
              "beyond the margin or the data cannot tell (inconclusive).", "", *table(HEADER, cells)]
        flips = [f"- {o.task} {o.metric}: worse {', '.join(o.comparison.flips_worse) or '-'}; better "
                 f"{', '.join(o.comparison.flips_better) or '-'}" for o in group if o.comparison is not None]
        if flips:
            md += ["", "## Items that flipped (ids; the largest changes for continuous metrics)", "", *flips]
        written.append(atomic_write(stem.with_suffix(".md"), "\n".join(md) + "\n"))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(cells)
        written.append(atomic_write(stem.with_suffix(".csv"), buffer.getvalue()))
        chart = forest_plot(candidate, reference, group, stem.with_suffix(".png"))
        if chart is not None:
            written.append(chart)
    return written


def forest_plot(candidate: str, reference: str, group: Sequence[Outcome], path: Path) -> Path | None:
    """Each metric's difference with its 95% interval and the margin, grouped by task."""
    plt = pyplot()
    shown = [o for o in group if o.comparison is not None]
    if not shown:
        return None
    colours = {"better": "tab:green", "not worse": "tab:blue", "worse": "tab:red", "inconclusive": "tab:orange"}
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(shown) + 1.6))
    for y, o in enumerate(shown):
        c = o.comparison
        assert c is not None
        diff, low, high = c.difference
        colour = colours.get(c.verdict, "tab:gray")
        ax.plot([low, high], [y, y], color=colour, linewidth=2)
        ax.plot(diff, y, "o", color=colour)
        bad_side = -c.margin if c.higher_is_better else c.margin  # the margin on the side that is worse
        ax.plot(bad_side, y, "|", color="black", markersize=12, markeredgewidth=2)
    ax.axvline(0, color="gray", linewidth=1)
    ax.set_yticks(range(len(shown)), [f"{o.task} {o.metric}" for o in shown], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("candidate - reference (dot), 95% CI (bar), margin (|); green better, blue not worse, "
                  "red worse, orange inconclusive", fontsize=7)
    return save_chart(fig, ax, f"medgate: {candidate} vs {reference}", path)
