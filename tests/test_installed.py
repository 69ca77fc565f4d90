"""medgate as a library and a plugin that other projects install: the public API, what the
package ships, a dormant plugin in an unrelated project, and the example project run from a
folder outside this repository with medgate installed from a wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import medgate
from medgate.core.io import file_digest
from medgate.core.synthetic import MANIFEST, manifest_text
from tests.conftest import FIXTURES, REPO

HEAVY = ("numpy", "torch", "vllm", "transformers", "medgate.pipeline", "medgate.plugin.session", "medgate.tasks")


def test_public_api_is_listed_importable_and_light():
    assert medgate.__all__ == sorted(medgate.__all__) and len(medgate.__all__) >= 20
    for name in medgate.__all__:
        assert getattr(medgate, name) is not None, name
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        medgate.nope  # noqa: B018
    probe = "import sys, medgate; print(' '.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []  # `import medgate` alone imports none of the heavy parts
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert [name for name in medgate.__all__ if f"`{name}`" not in readme] == []  # each one documented


def test_the_synthetic_manifest_lists_exactly_the_shipped_fixtures():
    files = [p for p in FIXTURES.iterdir() if p.is_file()]
    assert MANIFEST.read_text(encoding="utf-8") == manifest_text(files)  # scripts/build_fixtures.py writes it
    assert len(files) == 6 and all(len(file_digest(p)) == 64 for p in files)


def test_the_packaged_default_registry_is_the_repositorys_smollm2():
    packaged = tomllib.loads((REPO / "src" / "medgate" / "data" / "models.toml").read_text(encoding="utf-8"))
    repo = tomllib.loads((REPO / "models.toml").read_text(encoding="utf-8"))
    assert packaged["default"] == "smollm2" and list(packaged["models"]) == ["smollm2"]
    assert packaged["models"]["smollm2"] == repo["models"]["smollm2"]


UNRELATED = '''
import sys

def test_arithmetic():
    assert 1 + 1 == 2

def test_fails_on_purpose():
    assert 2 + 2 == 5

def test_probe():
    with open("loaded.txt", "w") as handle:
        handle.write(" ".join(m for m in HEAVY if m in sys.modules))
'''


@pytest.mark.parametrize("extra", [[], ["-n", "2"]])
def test_an_unrelated_project_runs_as_without_medgate(tmp_path, extra):
    project = tmp_path / "unrelated"
    project.mkdir()
    (project / "test_unrelated.py").write_text(UNRELATED.replace("HEAVY", repr(HEAVY)), encoding="utf-8")
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    cache = tmp_path / "medgate-cache"
    env = {**os.environ, "MEDGATE_CACHE": str(cache)}
    env.pop("MEDGATE_GENERATIONS", None)

    def session(*more: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, *more],
                              cwd=project, env=env, capture_output=True, text=True, timeout=300)

    before = sorted(p.name for p in project.iterdir())
    dormant = session()
    after = sorted(p.name for p in project.iterdir())
    loaded = (project / "loaded.txt").read_text()
    without = session("-p", "no:medgate")
    assert dormant.returncode == without.returncode == pytest.ExitCode.TESTS_FAILED
    tail = [line for line in dormant.stdout.splitlines() if " passed" in line][-1]
    assert "1 failed, 2 passed" in tail and "1 failed, 2 passed" in without.stdout
    assert set(after) - set(before) == {"loaded.txt"}  # no reports/, no cache, nothing else
    assert not cache.exists()
    assert loaded.split() == []
    assert "medgate verdicts" not in dormant.stdout


def _wheel_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with medgate installed from a freshly built wheel (--no-deps), borrowing this
    environment's heavy packages through a .pth file."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: building in the checkout would leave build/ there
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(root / "dist"), str(source)], check=True, capture_output=True)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    import sysconfig

    Path(site, "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    wheel = next((root / "dist").glob("medgate-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True)
    return python


@pytest.fixture(scope="module")
def wheel_python(tmp_path_factory):
    return _wheel_env(tmp_path_factory)


def example_copy(tmp_path: Path) -> Path:
    project = tmp_path / "triage-gate"  # outside this repository, as a team's checkout
    shutil.copytree(REPO / "examples" / "own-task", project, ignore=shutil.ignore_patterns("reports", "README.md"))
    return project


def run_in(project: Path, python: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    return subprocess.run([str(python), "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_wheel_ships_what_an_installed_medgate_needs(wheel_python):
    code = textwrap.dedent("""
        import json, medgate, medgate.plugin.hooks as hooks
        from medgate.core.paths import PACKAGE_ROOT
        from medgate.plugin.options import DEFAULT_REGISTRY
        shipped = [p for p in ("data/models.toml", "data/synthetic.sha256", "data/allure/package-lock.json",
                               "tasks/taskfile.schema.json", "models/chat_templates/chatml.jinja")
                   if (PACKAGE_ROOT / p).is_file()]
        print(json.dumps({"file": medgate.__file__, "shipped": shipped, "registry": str(DEFAULT_REGISTRY)}))
    """)
    out = json.loads(subprocess.run([str(wheel_python), "-c", code], check=True, capture_output=True, text=True).stdout)
    assert "site-packages" in out["file"] and str(REPO) not in out["file"]
    assert len(out["shipped"]) == 5


def test_the_example_project_from_a_wheel_with_the_fake_engine(wheel_python, tmp_path):
    project = example_copy(tmp_path)
    with (project / "models.toml").open("a", encoding="utf-8") as handle:
        handle.write(textwrap.dedent("""
            [models.fake-nurse]
            path = "."
            backend = "fake"
            fake_reply = "Level 3"
            [models.fake-nurse.thresholds]
            ed_triage = { accuracy = 0.10, undertriage_rate = 0.90 }
            [models.fake-nurse.margins]
            ed_triage = { accuracy = 0.30, undertriage_rate = 0.30, no_answer_rate = 0.30 }
        """))
    result = run_in(project, wheel_python, "--model", "fake-nurse", "--rejudge", "--no-cache")
    # --rejudge --no-cache is a usage error: the installed plugin answers it like the checkout's
    assert result.returncode == 4 and "--rejudge reads the generation cache" in result.stderr
    gated = run_in(project, wheel_python, "--model", "fake-nurse")
    assert gated.returncode == 0, gated.stdout + gated.stderr
    summary = json.loads((project / "reports" / "summary.json").read_text())
    accuracy = next(o for o in summary if o["metric"] == "accuracy")
    assert accuracy["status"] == "pass" and accuracy["threshold"] == 0.1
    assert (project / "reports" / "attestation.intoto.jsonl").exists()


def test_the_example_project_from_a_wheel_on_real_vllm(wheel_python, tmp_path):
    """The issue's "done when", as a new user runs it: from a folder outside this repository,
    with medgate installed from a wheel, `pytest --against smollm2-fp32` gates the team's task on
    its own thresholds on smollm2 through real vLLM engines and gives a comparison verdict."""
    project = example_copy(tmp_path)
    result = run_in(project, wheel_python, "--against", "smollm2-fp32", timeout=1500)
    shown = result.stdout + result.stderr
    assert "Traceback" not in shown
    summary = json.loads((project / "reports" / "summary.json").read_text())
    own = {o["metric"]: o for o in summary if o["against"] is None}
    assert set(own) == {"accuracy", "undertriage_rate", "no_answer_rate"}
    assert own["accuracy"]["threshold"] == 0.10 and own["accuracy"]["status"] == "pass"
    assert own["no_answer_rate"]["status"] == "pass"  # smollm2 answers with a level: prompt and parser work
    prov = own["accuracy"]["provenance"]
    assert prov["engine"] == "vllm" and prov["n_items"] == 37 and prov["data_source"] == "user"
    assert prov["dataset"] == str(project / "data" / "triage.jsonl")
    compared = [o for o in summary if o["against"] == "smollm2-fp32"]
    assert len(compared) == 3 and all(o["comparison"]["verdict"] in ("not worse", "better", "worse", "inconclusive")
                                      for o in compared)
    assert all(o["comparison"]["margin"] == 0.10 for o in compared)  # the team's margins
    assert result.returncode == (0 if all(o["status"] == "pass" for o in summary) else 1), shown[-3000:]
