"""A PNG per model for CI comments: each metric's value with its 95% interval, its threshold and
its baseline value."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from medgate.core.outcome import Outcome


def model_chart(model: str, outcomes: Sequence[Outcome], path: Path) -> Path | None:
    plt = pyplot()
    rows = [o for o in outcomes if o.model == model and o.value is not None and o.against is None]
    if not rows:
        return None
    rows.sort(key=lambda o: (o.task, o.metric))
    labels = [f"{o.task} {o.metric}" for o in rows]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.4))
    ys = range(len(rows))
    colours = {"pass": "tab:green", "fail": "tab:red", "known_gap": "tab:orange"}
    for y, o in zip(ys, rows):
        colour = colours.get(o.status, "tab:gray")
        if o.low is not None and o.high is not None:
            ax.plot([o.low, o.high], [y, y], color=colour, linewidth=2, alpha=0.6)
        ax.plot(o.value, y, "o", color=colour)
        if o.threshold is not None:
            ax.plot(o.threshold, y, "|", color="black", markersize=14, markeredgewidth=2)
        if o.comparison is not None:
            ax.plot(o.comparison.reference_value, y, "x", color="tab:blue", markersize=8)
    ax.set_yticks(list(ys), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("value (dot), 95% CI (bar), threshold (|), baseline (x); green pass, red fail, orange known gap")
    return save_chart(fig, ax, f"medgate: {model}", path)


def pyplot():  # type: ignore[no-untyped-def]
    """matplotlib's pyplot without a screen (CI machines have none); imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_chart(fig, ax, title: str, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Title, grid and layout of every medgate chart; written to ``path`` and closed. ``ax``
    may be a list of panels: the title is then the figure's."""
    panels = ax if isinstance(ax, list) else [ax]
    if len(panels) == 1:
        panels[0].set_title(title)
    else:
        fig.suptitle(title)
    for panel in panels:
        panel.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path
