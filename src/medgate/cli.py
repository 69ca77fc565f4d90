"""`medgate html` turns reports/ into the HTML report (Allure 3, from tools/allure); `medgate
table` writes the table across models. Also `python -m medgate.cli ...`."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from medgate.core.paths import SOURCE_ROOT
from medgate.reporting.table import write_models_table

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medgate", description=__doc__)
    parser.add_argument("command", choices=["html", "table"])
    parser.add_argument("--reports-dir", default="reports", help="the reports folder (default: reports)")
    args = parser.parse_args(argv)
    reports = Path(args.reports_dir).resolve()
    if args.command == "html":
        print(build_html(reports))
    else:
        for path in write_models_table(reports):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
