"""`medgate html` turns reports/ into the HTML report (Allure 3, from tools/allure); `medgate
table` writes the table across models (one section per data set; `--data` and `--limit` pick
some), and with `--published` also each model's values beside the published CLUE figures
(reports/reproduction.md); `medgate verify` checks a release record
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

from medgate.core.errors import ConfigError, MedgateError
from medgate.core.paths import SOURCE_ROOT
from medgate.models.registry import load_registry
from medgate.reporting.published import FIGURES, reproduction_rows, unknown_names, write_reproduction
from medgate.reporting.table import models_table, write_models_table
from medgate.reporting.table_choice import choose, describe

_ALLURE = SOURCE_ROOT / "tools" / "allure" / "node_modules" / ".bin" / "allure"


def allure_binary() -> Path:
    configured = os.environ.get("MEDGATE_ALLURE")
    path = Path(configured) if configured else _ALLURE
    if not path.exists():
        raise SystemExit(f"medgate: the Allure report generator is not installed at {path}; run scripts/setup")
    return path


def allure_config(reports: Path) -> Path:
    """allurerc.json: history kept under reports/ between runs, and every medgate metric trended
    with its direction."""
    results = reports / "allure-results"
    metrics = {}
    for perf in results.glob("*-perf.json"):
        for record in json.loads(perf.read_text(encoding="utf-8")):
            metrics[record["key"]] = {"better": record.get("better", "higher"), "title": record["key"].replace(".", " ")}
    config = {
        "name": "medgate",
        "output": str(reports / "html"),
        "historyPath": str(reports / "history.jsonl"),
        "performance": {"metrics": metrics},
    }
    path = reports / "allurerc.json"
    path.write_text(json.dumps(config, indent=1, sort_keys=True), encoding="utf-8")
    return path


def build_html(reports: Path) -> Path:
    results = reports / "allure-results"
    if not any(results.glob("*-result.json")):
        raise SystemExit(f"medgate: no Allure results in {results}; run pytest tests_medical first")
    config = allure_config(reports)
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["verify"]:
        return verify_main(argv[1:])
    parser = argparse.ArgumentParser(prog="medgate", description=__doc__)
    parser.add_argument("command", choices=["html", "table", "verify"])
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
    args = parser.parse_args(argv)
    reports = Path(args.reports_dir).resolve()
    if args.command == "html":
        print(build_html(reports))
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
