"""`medgate html` turns reports/ into the HTML report (Allure 3, from tools/allure), with
`--history FILE` keeping Allure's history (trends) in a file CI caches; `medgate trend
--history FILE` adds this run's comparisons to medgate's own history and writes
reports/trend.md; `medgate table` writes the table across models (one section per data set;
`--data` and `--limit` pick some), and with `--published` also each model's values beside the
published CLUE figures (reports/reproduction.md); `medgate verify` checks a release record
(reports/attestation.intoto.jsonl) against a public key and the files it names. Also
`python -m medgate.cli ...`."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from medgate.core.errors import ConfigError, DataError, MedgateError
from medgate.core.outcome import Outcome
from medgate.core.paths import PACKAGE_ROOT, SOURCE_ROOT, cache_dir
from medgate.models.registry import load_registry
from medgate.reporting.history import append_history, run_id, write_trend
from medgate.reporting.published import FIGURES, reproduction_rows, unknown_names, write_reproduction
from medgate.reporting.table import models_table, write_models_table
from medgate.reporting.table_choice import choose, describe

ALLURE_LOCK = PACKAGE_ROOT / "data" / "allure"  # package.json and package-lock.json: Allure 3, pinned
_BIN = Path("node_modules") / ".bin" / "allure"


def allure_home() -> Path:
    """Where the report generator is installed: tools/allure in a checkout, else medgate's cache."""
    checkout = SOURCE_ROOT / "tools" / "allure"
    return checkout if (SOURCE_ROOT / ".git").exists() else cache_dir() / "allure"


def allure_binary() -> Path:
    configured = os.environ.get("MEDGATE_ALLURE")
    path = Path(configured) if configured else allure_home() / _BIN
    if not path.exists():
        raise SystemExit(f"medgate: the Allure report generator is not installed at {path}; run "
                         "`medgate install-allure` (needs npm; scripts/setup does it in a checkout)")
    return path


def install_allure(home: Path) -> Path:
    """npm ci of the pinned lock file shipped with the package, into ``home``; offline afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(ALLURE_LOCK / name, home / name)
    proc = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=home, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"medgate: npm ci in {home} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return home / _BIN


def allure_config(reports: Path, history: Path | None = None, history_limit: int | None = None) -> Path:
    """allurerc.json: Allure's history (one JSON line per generate; Allure reads it and appends,
    creating it when missing) in ``history`` or else reports/history.jsonl, and every medgate
    metric trended with its direction."""
    results = reports / "allure-results"
    metrics = {}
    for perf in results.glob("*-perf.json"):
        for record in json.loads(perf.read_text(encoding="utf-8")):
            metrics[record["key"]] = {"better": record.get("better", "higher"), "title": record["key"].replace(".", " ")}
    config = {
        "name": "medgate",
        "output": str(reports / "html"),
        "historyPath": str(history.resolve() if history else reports / "history.jsonl"),
        "performance": {"metrics": metrics},
    }
    if history_limit is not None:
        config["historyLimit"] = history_limit
    path = reports / "allurerc.json"
    path.write_text(json.dumps(config, indent=1, sort_keys=True), encoding="utf-8")
    return path


def build_html(reports: Path, history: Path | None = None, history_limit: int | None = None) -> Path:
    results = reports / "allure-results"
    if not any(results.glob("*-result.json")):
        raise SystemExit(f"medgate: no Allure results in {results}; run pytest tests_medical first")
    if history is not None and history.is_dir():
        raise SystemExit(f"medgate: --history {history}: a folder; give the history file (e.g. {history / 'allure.jsonl'})")
    config = allure_config(reports, history, history_limit)
    shutil.rmtree(reports / "html", ignore_errors=True)
    # Each generate appends one line to the history: call it once per suite run.
    proc = subprocess.run([str(allure_binary()), "generate", "--config", str(config), str(results)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"medgate: allure generate failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return reports / "html" / "index.html"


def published_names(models_file: Path) -> dict[str, str]:
    """models.toml's mapping from model to its name in the published figures; an unknown name is
    an error naming the file and the key."""
    try:
        registry = load_registry(models_file)
    except ConfigError as exc:
        raise SystemExit(f"medgate: {exc}") from None
    mapping = {name: spec.published for name, spec in registry.models.items() if spec.published}
    for model, name in unknown_names(mapping).items():
        raise SystemExit(f"medgate: {models_file}: models.{model}.published: {name!r} has no published figures "
                         f"(known: {', '.join(FIGURES)})")
    return mapping


def verify_main(argv: list[str]) -> int:
    """`medgate verify FILE [--key PUB] [--model PATH] [--data-dir DIR] [--models-file F] [--runs DIR]`:
    one line per binding, exit 1 on any failure (or an unsigned record when --key is given), 2 on
    a usage error."""
    from medgate.reporting.dsse import load_public_key
    from medgate.reporting.verify import exit_status, verify

    parser = argparse.ArgumentParser(prog="medgate verify", description=verify_main.__doc__)
    parser.add_argument("file", type=Path, help="the release record (reports/attestation.intoto.jsonl)")
    parser.add_argument("--key", type=Path,
                        help="the signer's Ed25519 public key (PEM); without it no signature is checked")
    parser.add_argument("--model", type=Path, help="a model folder: its weights must be a statement's subject")
    parser.add_argument("--data-dir", type=Path,
                        help="the data folder: each task's data file must have the recorded sha256")
    parser.add_argument("--models-file", type=Path,
                        help="models.toml: each model's pass criteria must have the recorded digest")
    parser.add_argument("--runs", type=Path,
                        help="the run records (reports/runs): the per-item scores must give the recorded Merkle roots")
    args = parser.parse_args(argv)
    for name in ("file", "key", "models_file"):
        path = getattr(args, name)
        if path is not None and not path.is_file():
            parser.error(f"{path}: no such file")
    for name in ("model", "data_dir", "runs"):
        path = getattr(args, name)
        if path is not None and not path.is_dir():
            parser.error(f"{path}: no such folder")
    try:
        key = load_public_key(args.key) if args.key is not None else None
    except ConfigError as exc:
        parser.error(str(exc))
    try:
        bindings = verify(args.file, key, model_dir=args.model, data_dir=args.data_dir, models_file=args.models_file,
                          runs_dir=args.runs)
    except ValueError as exc:  # not a release record at all: nothing in it can hold
        print(f"FAIL statement: {exc}")
        return 1
    for binding in bindings:
        print(binding.line())
    return exit_status(bindings, key_given=key is not None)


def trend(reports: Path, history: Path) -> list[Path]:
    """This run's comparisons (reports/summary.json) added to the history file, then the trend."""
    summary = reports / "summary.json"
    if not summary.exists():
        raise SystemExit(f"medgate: no {summary}; run pytest tests_medical first")
    try:
        outcomes = [Outcome.from_dict(o) for o in json.loads(summary.read_text(encoding="utf-8"))]
        append_history(history, outcomes, run_id(os.environ))
        return write_trend(reports, history)
    except DataError as exc:
        raise SystemExit(f"medgate: {exc}") from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive whole number")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["verify"]:
        return verify_main(argv[1:])
    if argv[:1] == ["install-allure"]:
        print(install_allure(Path(argv[2]) if argv[1:2] == ["--into"] and len(argv) > 2 else allure_home()))
        return 0
    parser = argparse.ArgumentParser(prog="medgate", description=__doc__)
    parser.add_argument("command", choices=["html", "table", "trend", "verify", "install-allure"])
    parser.add_argument("--reports-dir", default="reports", help="the reports folder (default: reports)")
    parser.add_argument("--published", action="store_true",
                        help="table: also put each model's values beside the published CLUE figures "
                             "(models.toml's 'published' names the model there)")
    parser.add_argument("--models-file", default=None,
                        help="table --published: the registry (default: models.toml here, else the repository's)")
    parser.add_argument("--data", default=None,
                        help="table: only the data set(s) of: synthetic, user, a data file's hash prefix, or a data "
                             "file or folder (hashed as a run hashes it)")
    parser.add_argument("--limit", default=None,
                        help="table: only runs made with this --limit (N), or 'all' for runs without one")
    parser.add_argument("--history", default=None, metavar="FILE",
                        help="html: Allure's history file (read and extended; created when missing), e.g. in a CI "
                             "cache, instead of reports/history.jsonl; trend: medgate's own history file (required)")
    parser.add_argument("--history-limit", type=_positive, default=None, metavar="N",
                        help="html: keep only the latest N runs in the history file")
    args = parser.parse_args(argv)
    reports = Path(args.reports_dir).resolve()
    history = Path(args.history).resolve() if args.history else None
    if args.command == "html":
        print(build_html(reports, history, args.history_limit))
        return 0
    if args.command == "trend":
        if history is None:
            parser.error("trend needs --history FILE (the file CI keeps between runs)")
        for path in trend(reports, history):
            print(path)
        return 0
    try:
        chosen = choose(models_table(reports), args.data, args.limit)
    except MedgateError as exc:
        raise SystemExit(f"medgate: {exc}") from None
    for path in write_models_table(reports, chosen, describe(args.data, args.limit)):
        print(path)
    if args.published:
        models_file = Path(args.models_file) if args.models_file else Path("models.toml")
        if not args.models_file and not models_file.exists():
            models_file = SOURCE_ROOT / "models.toml"
        for path in write_reproduction(reports, reproduction_rows(reports, published_names(models_file.resolve()))):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
