"""Where a team reads CI: GitHub's job summary, workflow commands (annotations) and a
pull-request comment, all built from the outcomes and the run's headline. Credentials are
masked; a message can neither start a second workflow command nor hide text in a comment."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence, TextIO

from medgate.core.io import atomic_write
from medgate.core.outcome import Outcome
from medgate.core.redact import redact
from medgate.reporting import comparisons
from medgate.reporting.markdown import one_line, table
from medgate.reporting.summary import HEADER, not_gated_lines, verdict_rows

COMMENT_LIMIT = 65536  # GitHub's limit on a pull-request comment, in characters
_FAILED = ("fail", "error")


@dataclass(frozen=True)
class Block:
    """A heading (kept whole) and rows (lines a pull-request comment may leave out, from the end)."""

    head: list[str]
    rows: list[str] = field(default_factory=list)


def _ordered(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return sorted(outcomes, key=lambda o: (o.model, o.against or "", o.task, o.metric))


def _blocks(outcomes: Sequence[Outcome], headline: str) -> list[Block]:
    ordered = _ordered(outcomes)
    blocks = [Block([f"## {one_line(headline)}", ""])]
    gate_lines = not_gated_lines(outcomes)
    if gate_lines:
        blocks.append(Block([*map(one_line, gate_lines), ""]))
    failed = [o for o in ordered if o.status in _FAILED]
    if failed:
        blocks.append(Block(["### Failed or errored gates", ""],
                            [f"- **{o.status.upper()}** {one_line(o.message)}" for o in failed]))
    gaps = [o for o in ordered if o.status == "known_gap"]
    if gaps:
        blocks.append(Block([f"### Known gaps (models.toml): {len(gaps)}", ""], [f"- {one_line(o.message)}" for o in gaps]))
    gated = [o for o in ordered if o.against is None and (o.threshold is not None or o.comparison is not None)]
    if gated:
        header, *rows = table(HEADER, verdict_rows(gated))
        blocks.append(Block(["### Gates (thresholds and baselines)", "", header, rows[0]], rows[1:]))
    for section in comparisons.sections(outcomes):
        header, rule, *rows = table(comparisons.HEADER, section.rows)
        head = [f"### {one_line(section.candidate)} vs {one_line(section.reference)}", ""]
        head += [*map(one_line, section.preface), ""] if section.preface else []
        blocks.append(Block([*head, header, rule], rows))
    return blocks


def _render(blocks: Sequence[Block], rows_kept: int | None = None) -> list[str]:
    """The blocks as lines, keeping only the first ``rows_kept`` rows of the whole document; a
    block none of whose rows is kept is left out with its heading."""
    lines: list[str] = []
    left = rows_kept
    for block in blocks:
        shown = block.rows if left is None else block.rows[:left]
        if block.rows and not shown:
            continue
        if left is not None:
            left -= len(shown)
        lines += [*block.head, *shown]
        if block.rows:
            lines.append("")
    return lines


def step_summary(outcomes: Sequence[Outcome], headline: str, environ: Mapping[str, str] | None = None) -> str:
    """The job summary (Markdown): the verdict, failed and errored gates with their one-line
    reasons, NOT GATED models, known gaps, the gates and every comparison table."""
    return redact("\n".join(_render(_blocks(outcomes, headline))) + "\n", environ)


def comment_marker(models: Sequence[str]) -> str:
    """The hidden first line of the comment: it names the run's models (sorted), so a workflow
    finds its own earlier comment and updates it."""
    names = ",".join(sorted(set(models)))
    return f"<!-- medgate:{re.sub(r'[^A-Za-z0-9._@,+-]', '_', names)} -->"


def pr_comment(outcomes: Sequence[Outcome], headline: str, models: Sequence[str], limit: int = COMMENT_LIMIT,
               environ: Mapping[str, str] | None = None) -> str:
    """The step summary under the marker, cut by whole rows from the end to stay under ``limit``
    characters, saying how many rows were left out."""
    blocks = [Block([comment_marker(models)]), *_blocks(outcomes, headline)]
    total = sum(len(b.rows) for b in blocks)

    def text(kept: int) -> str:
        lines = _render(blocks, kept)
        if kept < total:
            lines.append(f"_{total - kept} of {total} rows left out to fit GitHub's comment limit; every row is in "
                         f"the job summary and reports/summary.md._")
        return redact("\n".join(lines) + "\n", environ)

    low, high = 0, total  # the most rows that fit: text(kept) grows with kept
    while low < high:
        middle = (low + high + 1) // 2
        if len(text(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    body = text(low)
    if len(body) > limit:  # the lines that are never cut (NOT GATED) alone are too long: whole lines
        kept, size = [], 0
        for line in body.splitlines(keepends=True):
            size += len(line)
            if size > limit:
                break
            kept.append(line)
        body = "".join(kept)
    return body


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as GitHub documents: it stays one command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (title): also ':' and ','."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_commands(outcomes: Sequence[Outcome], environ: Mapping[str, str] | None = None) -> list[str]:
    """One ::error per failed or errored gate, with pytest's one-line message, and one ::warning
    per inconclusive comparison that models.toml allows (xfail); nothing else."""
    out = []
    for o in _ordered(outcomes):
        c = o.comparison
        if o.status in _FAILED:
            kind = "error"
        elif o.status == "known_gap" and c is not None and c.verdict == "inconclusive":
            kind = "warning"
        else:
            continue
        subject = o.model if o.against is None else f"{o.model} vs {o.against}"
        title = redact(f"medgate {subject} {o.task} {o.metric}", environ)
        out.append(f"::{kind} title={escape_property(title)}::{escape_data(redact(o.message, environ))}")
    return out


def write_github(reports_dir: Path, outcomes: Sequence[Outcome], headline: str, models: Sequence[str],
                 env: Mapping[str, str] = os.environ, stream: TextIO | None = None) -> list[Path]:
    """reports/pr-comment.md always; under GitHub Actions also the job summary (appended to
    $GITHUB_STEP_SUMMARY) and the workflow commands (on ``stream``, default stdout)."""
    written = [atomic_write(reports_dir / "pr-comment.md", pr_comment(outcomes, headline, models, environ=env))]
    if env.get("GITHUB_ACTIONS") != "true":
        return written
    summary_file = env.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as handle:  # other steps write there too: append
            handle.write(step_summary(outcomes, headline, env))
        written.append(Path(summary_file))
    commands = workflow_commands(outcomes, env)
    if commands:
        out = stream if stream is not None else sys.stdout
        # A command counts only at the start of a line: pytest's progress line may still be open.
        out.write("\n" + "".join(f"{command}\n" for command in commands))
        out.flush()
    return written
