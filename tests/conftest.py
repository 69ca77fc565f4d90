"""Helpers for the suite's own tests."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


def copy_clinical_tests(pytester: pytest.Pytester, *names: str) -> pytest.Pytester:
    """A pytester folder with the named modules of tests_medical/, as a user's checkout has them."""
    pytester.mkdir("tests_medical")
    for name in names:
        (pytester.path / "tests_medical" / name).write_text((REPO / "tests_medical" / name).read_text())
    return pytester


def write_models(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def private_generation_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test (and the pytest sessions it starts) gets its own generation cache."""
    path = tmp_path_factory.mktemp("generations") / "generations.sqlite"
    monkeypatch.setenv("MEDGATE_GENERATIONS", str(path))
    return path


@pytest.fixture
def fake_models(tmp_path: Path) -> Path:
    """A models.toml with two fake-engine models (plumbing tests only)."""
    return write_models(
        tmp_path / "models.toml",
        """
        default = "fake-a"

        [aliases]
        a = "fake-a"

        [models.fake-a]
        path = "."
        backend = "fake"
        fake_reply = "ENTAILMENT"

        [models.fake-a.thresholds]
        mednli = { accuracy = 0.9, no_label_rate = 0.5 }

        [models.fake-b]
        path = "."
        backend = "fake"
        fake_reply = "The answer is NEUTRAL."
        """,
    )


def outcomes(reports_dir: Path) -> list[dict]:
    return json.loads((reports_dir / "summary.json").read_text())


def engine_events(log: Path, event: str) -> list[list[str]]:
    """The engine log's lines of one event ("load" or "generate"), as fields after the event:
    model, pid, worker, and the devices (load) or the prompt count (generate)."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split()[1:] for line in lines if line.split()[0] == event]


def generated(log: Path) -> int:
    """Prompts that engines were asked to generate, over every process."""
    return sum(int(fields[3]) for fields in engine_events(log, "generate"))
