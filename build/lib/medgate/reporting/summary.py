"""The run summary: a verdict table for the terminal and reports/summary.md, plus the
environment facts every report records. Built from outcome dicts, never from patient text."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from medgate.core.io import atomic_write
from medgate.core.outcome import Outcome
from medgate.core.versions import package_versions
from medgate.reporting.comparisons import summary_lines
from medgate.reporting.markdown import table
from medgate.reporting.trivial import trivial_lines

_SYMBOL = {"pass": "PASS", "fail": "FAIL", "no_threshold": "no threshold", "not_computed": "not computed",
           "error": "ERROR", "known_gap": "XFAIL (known gap)", "skipped": "SKIPPED (no data file)"}


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def verdict_rows(outcomes: Iterable[Outcome]) -> list[list[str]]:
    rows = []
    for o in sorted(outcomes, key=lambda o: (o.model, o.against or "", o.task, o.metric)):
        bound = "-"
        if o.threshold is not None:
            bound = (">= " if o.higher_is_better else "<= ") + _fmt(o.threshold)
        interval = "-" if o.low is None else f"{o.low:.4f}-{o.high:.4f}"
        c = o.comparison
        if c is None:
            compared = "-"
        elif c.rule == "significant_drop":
            compared = f"drop {c.drop:+.4f} (p={c.p_adjusted:.3g})"
        else:
            compared = f"{c.difference[0]:+.4f} vs {c.reference}: {c.verdict}"
        model = o.model if o.against is None else f"{o.model} vs {o.against}"
        rows.append([model, o.task, o.metric, _fmt(o.value), interval, bound, compared, _SYMBOL[o.status]])
    return rows


HEADER = ["model", "task", "metric", "value", "95% CI", "threshold", "comparison", "verdict"]


def not_gated(outcomes: Sequence[Outcome]) -> list[str]:
    """Models that no threshold, baseline or reference gated on any selected metric: a green
    run of them says nothing."""
    models = sorted({o.model for o in outcomes})
    gated = {o.model for o in outcomes if o.threshold is not None or o.comparison is not None or o.against}
    return [m for m in models if m not in gated]


def verdict_table(outcomes: Sequence[Outcome]) -> list[str]:
    rows = [HEADER, *verdict_rows(outcomes)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    return [*not_gated_lines(outcomes), *("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)]


def not_gated_lines(outcomes: Sequence[Outcome]) -> list[str]:
    return [f"NOT GATED: {m} (no threshold, baseline or reference for any selected metric; --require-gate fails this)"
            for m in not_gated(outcomes)]


def environment_properties(outcomes: Sequence[Outcome]) -> dict[str, str]:
    """Model fingerprints, engine, device, dataset hashes and decoding settings of the run."""
    props: dict[str, str] = {"python": platform.python_version()}
    for o in outcomes:
        prov = o.provenance
        model, task = o.model, o.task
        for key in ("model_fingerprint", "engine", "engine_version", "device"):
            if key in prov:
                props[f"{model}.{key}"] = str(prov[key])
        if "dataset_hash" in prov:
            props[f"dataset.{task}"] = f"{prov['dataset_hash']} ({prov.get('data_source', '?')})"
        if "decoding" in prov:
            props[f"decoding.{task}"] = json.dumps(prov["decoding"], sort_keys=True)
        if "prompts" in prov:
            props[f"prompts.{task}"] = prompts_label(prov)
    for package, found in package_versions().items():
        props[f"package.{package}"] = found
    return props


def prompts_label(prov: Mapping[str, Any]) -> str:
    """Which prompts a result used: medgate's own, or the reference's at a commit with a template hash."""
    if prov.get("prompts") != "reference":
        return f"{prov.get('prompts', 'medgate')} ({prov.get('prompt_version', '?')})"
    return (f"reference (commit {prov.get('reference_commit', '?')}, templates sha256 "
            f"{str(prov.get('prompt_templates_sha256', '?'))[:12]})")


def scoring_notes(outcomes: Sequence[Outcome]) -> dict[str, str]:
    """The scoring notes of each model and task (encoders used, the task's own notes such as
    LongHealth's packing counts) and the reasons metrics were not computed."""
    notes: dict[str, str] = {}
    for o in outcomes:
        key = f"{o.model} {o.task}"
        for name, text in o.provenance.get("notes", {}).items():
            notes[f"{key} {name}"] = str(text)
        if o.status == "not_computed":
            notes[f"{key} {o.metric}"] = o.message.split(": not computed: ", 1)[-1]
    return notes


def headline(outcomes: Sequence[Outcome], require_gate: bool = False) -> str:
    """The verdict of the run in one line: FAILED, NOTHING SCORED (no evidence: never a pass) or PASSED."""
    failed = sum(o.status in ("fail", "error") for o in outcomes)
    if failed:
        return f"medgate: FAILED ({failed} of {len(outcomes)} tests failed or errored)"
    if not any(o.value is not None for o in outcomes):
        return "medgate: NOTHING SCORED (no test produced a value: this run is not a pass)"
    if require_gate and not_gated(outcomes):
        return f"medgate: FAILED (--require-gate: {', '.join(not_gated(outcomes))} gated by nothing)"
    return "medgate: PASSED"


def write_summary(reports_dir: Path, outcomes: Sequence[Outcome], require_gate: bool = False) -> Path:
    """reports/summary.md (read in ten seconds) and summary.json (for tools)."""
    rows = verdict_rows(outcomes)
    failed = [o for o in outcomes if o.status in ("fail", "error")]
    gaps = [o for o in outcomes if o.status == "known_gap"]
    lines = [f"# {headline(outcomes, require_gate)}", ""]
    gate_lines = not_gated_lines(outcomes)
    if gate_lines:
        lines += [*gate_lines, ""]
    lines += [f"- {o.message}" for o in failed]
    if gaps:
        lines += ["", f"Known gaps (xfail in models.toml): {len(gaps)}"] + [f"- {o.message}" for o in gaps]
    missing = sorted({o.message for o in outcomes if o.status == "skipped"})
    if missing:
        lines += ["", "Not run, no data file (these tasks are not gated):"] + [f"- {m}" for m in missing]
    if failed or gaps or missing:
        lines.append("")
    lines += table(HEADER, rows)
    lines += summary_lines(outcomes)
    lines += trivial_lines(outcomes)
    env = environment_properties(outcomes)
    lines += ["", "## Provenance", ""] + [f"- {k}: {v}" for k, v in sorted(env.items())]
    notes = scoring_notes(outcomes)
    if notes:
        lines += ["", "## Scoring notes", ""] + [f"- {k}: {v}" for k, v in sorted(notes.items())]
    path = atomic_write(reports_dir / "summary.md", "\n".join(lines) + "\n")
    atomic_write(reports_dir / "summary.json", json.dumps([o.to_dict() for o in outcomes], indent=1, default=str))
    return path
