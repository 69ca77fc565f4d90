"""A fine-tuning run's checkpoints against the model they came from:
reports/comparisons/series-vs-<REF>.md, .csv and .png. Checkpoints are ordered by step (the
number in the name, or models.toml's `step = N`); one Holm family spans every checkpoint and
metric. Names the latest checkpoint not worse on any gated metric and the best of those by a
primary metric."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

from medgate.core.errors import ConfigError
from medgate.core.io import atomic_write
from medgate.core.outcome import Outcome
from medgate.judging.series import rejudge_across
from medgate.reporting.charts import pyplot, save_chart
from medgate.reporting.comparisons import HEADER as COMPARISON_HEADER
from medgate.reporting.comparisons import rows as comparison_rows
from medgate.reporting.markdown import table

HEADER = ["step", "checkpoint", *COMPARISON_HEADER]
_INTEGER = re.compile(r"\d+")
_SAFE = ("better", "not worse")


def step_of(name: str) -> int | None:
    """The last integer in the last path component: ckpt/step-500 -> 500, run3_step-1000 -> 1000."""
    found = _INTEGER.findall(name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1])
    return int(found[-1]) if found else None


def parse_primary(text: str) -> tuple[str, str]:
    """--primary TASK.METRIC as (task, metric)."""
    task, dot, metric = text.partition(".")
    if not dot or not task or not metric:
        raise ConfigError(f"--primary {text!r}: expected TASK.METRIC, e.g. mednli.accuracy")
    return task, metric


@dataclass(frozen=True)
class SeriesRow:
    step: int | None
    checkpoint: str
    outcome: Outcome  # its comparison judged again with the series' Holm family (None: errored, not computed)


def _step(checkpoint: str, steps: Mapping[str, int | None]) -> int | None:
    given = steps.get(checkpoint)
    return step_of(checkpoint) if given is None else given


def _order(checkpoint: str, steps: Mapping[str, int | None]) -> tuple[bool, int, str]:
    """By step; checkpoints without one after those with one, by name."""
    step = _step(checkpoint, steps)
    return (step is None, step or 0, checkpoint)


def series_rows(outcomes: Sequence[Outcome], reference: str,
                steps: Mapping[str, int | None] | None = None) -> list[SeriesRow]:
    """Every comparison with ``reference``, checkpoints ordered by step then name; each
    comparison re-judged in one Holm family spanning every checkpoint and metric. ``steps``
    maps a checkpoint to models.toml's step (None: the number in its name)."""
    steps = steps or {}
    compared = [o for o in outcomes if o.against == reference]
    judged = iter(rejudge_across([o.comparison for o in compared if o.comparison is not None]))
    again = [replace(o, comparison=next(judged)) if o.comparison is not None else o for o in compared]
    again.sort(key=lambda o: (_order(o.model, steps), o.task, o.metric))
    return [SeriesRow(_step(o.model, steps), o.model, o) for o in again]


def not_worse(rows: Sequence[SeriesRow]) -> list[str]:
    """Checkpoints compared on at least one metric, better or not worse on every one of them,
    with no errored comparison; in step order."""
    by_checkpoint: dict[str, list[Outcome]] = {}
    for row in rows:
        by_checkpoint.setdefault(row.checkpoint, []).append(row.outcome)
    return [name for name, group in by_checkpoint.items()
            if any(o.comparison for o in group) and all(o.status != "error" for o in group)
            and all(o.comparison.verdict in _SAFE for o in group if o.comparison is not None)]


def latest_not_worse(rows: Sequence[SeriesRow]) -> str | None:
    safe = not_worse(rows)
    return safe[-1] if safe else None


def best_by(rows: Sequence[SeriesRow], primary: tuple[str, str]) -> SeriesRow | None:
    """Of the not-worse checkpoints, the one with the largest gain on ``primary`` (the later
    one on a tie)."""
    safe = set(not_worse(rows))
    chosen = [r for r in rows if r.checkpoint in safe and r.outcome.comparison is not None
              and (r.outcome.task, r.outcome.metric) == primary]
    return max(reversed(chosen), key=lambda r: -r.outcome.comparison.drop, default=None)  # type: ignore[union-attr]


def _cells(rows: Sequence[SeriesRow]) -> list[list[str]]:
    return [["-" if r.step is None else str(r.step), r.checkpoint, *line]
            for r, line in zip(rows, comparison_rows([r.outcome for r in rows]))]


def series_lines(rows: Sequence[SeriesRow], reference: str, primary: str | None) -> list[str]:
    judged = sum(r.outcome.comparison is not None for r in rows)
    checkpoints = list(dict.fromkeys(r.checkpoint for r in rows))
    latest = latest_not_worse(rows)
    lines = [f"# Checkpoints vs {reference}", "",
             f"{len(checkpoints)} checkpoints, ordered by step (the number in the name, or models.toml's step). "
             f"Difference = checkpoint - {reference} (95% interval). One Holm family spans every checkpoint and metric "
             f"here ({judged} comparisons), so picking the best of many does not make a chance gain look real: the "
             "verdicts and Holm p below use that family, not each checkpoint's own.", "",
             f"- Latest checkpoint not worse on every gated metric: {f'**{latest}**' if latest else 'none'}"]
    if primary:
        task, metric = parse_primary(primary)
        best = best_by(rows, (task, metric))
        if best is not None and best.outcome.comparison is not None:
            diff, low, high = best.outcome.comparison.difference
            lines.append(f"- Best by {primary} among those: **{best.checkpoint}** ({diff:+.4f} [{low:+.4f}, {high:+.4f}], "
                         f"{best.outcome.comparison.verdict})")
        elif not any((r.outcome.task, r.outcome.metric) == (task, metric) for r in rows):
            lines.append(f"- Best by {primary}: no checkpoint was compared on {task} {metric}")
        else:
            lines.append(f"- Best by {primary}: none (no checkpoint is not worse on every gated metric)")
    return [*lines, "", *table(HEADER, _cells(rows))]


def write_series(reports_dir: Path, outcomes: Sequence[Outcome], reference: str,
                 steps: Mapping[str, int | None] | None = None, primary: str | None = None) -> list[Path]:
    """series-vs-<reference>.md, .csv and .png under reports/comparisons/."""
    rows = series_rows(outcomes, reference, steps)
    if not rows:
        return []
    stem = reports_dir / "comparisons" / f"series-vs-{reference}"
    written = [atomic_write(stem.with_suffix(".md"), "\n".join(series_lines(rows, reference, primary)) + "\n")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(_cells(rows))
    written.append(atomic_write(stem.with_suffix(".csv"), buffer.getvalue()))
    chart = series_plot(rows, reference, stem.with_suffix(".png"))
    return written + ([chart] if chart is not None else [])


def series_plot(rows: Sequence[SeriesRow], reference: str, path: Path) -> Path | None:
    """One panel per task: each metric's difference (dot) with its interval (bar) against the
    step, and its margin on the worse side (dashed)."""
    shown = [r for r in rows if r.outcome.comparison is not None]
    if not shown:
        return None
    plt = pyplot()
    tasks = sorted({r.outcome.task for r in shown})
    checkpoints = list(dict.fromkeys(r.checkpoint for r in rows))
    by_step = all(r.step is not None for r in shown)  # else the checkpoints' order stands in for the step
    fig, axes = plt.subplots(len(tasks), 1, figsize=(8, 2.6 * len(tasks) + 0.8), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        metrics = sorted({r.outcome.metric for r in shown if r.outcome.task == task})
        for index, metric in enumerate(metrics):
            colour = f"C{index % 10}"
            points = [r for r in shown if (r.outcome.task, r.outcome.metric) == (task, metric)]
            xs = [r.step if by_step else checkpoints.index(r.checkpoint) for r in points]
            diffs = [r.outcome.comparison.difference for r in points]  # type: ignore[union-attr]
            ys = [d[0] for d in diffs]
            ax.errorbar(xs, ys, yerr=[[d[0] - d[1] for d in diffs], [d[2] - d[0] for d in diffs]], fmt="o-",
                        color=colour, capsize=3, label=metric)
            c = points[0].outcome.comparison
            assert c is not None
            ax.axhline(-c.margin if c.higher_is_better else c.margin, color=colour, linestyle="--", linewidth=1)
        ax.axhline(0, color="gray", linewidth=1)
        ax.set_title(task, fontsize=9)
        ax.set_ylabel(f"checkpoint - {reference}", fontsize=7)
        if not by_step:
            ax.set_xticks(range(len(checkpoints)), checkpoints, fontsize=7)
        ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("step: difference (dot), 95% CI (bar), margin on the worse side (dashed)", fontsize=7)
    title = f"medgate: checkpoints vs {reference}" + (f", {tasks[0]}" if len(tasks) == 1 else "")
    return save_chart(fig, list(axes[:, 0]), title, path)
