"""Data-parallel generation: how the wall time of one model falls with xdist workers.

    python benchmarks/scale.py              # both parts
    python benchmarks/scale.py --fake       # (a) only: the fake engine, about 8 minutes
    python benchmarks/scale.py --smollm2    # (b) only: the real engine on this machine's cores

(a) The fake engine with a fixed delay per prompt token (``MEDGATE_FAKE_TOKEN_DELAY``), so its
    cost follows prompt length as a real engine's does and does not need CPU: one model, the
    tasks whose scoring is cheap (MedNLI, MeDiSumCode, LongHealth; 200+ prompts of up to 8k
    tokens), `pytest -n 4` against `pytest -n 1`. Prints wall(-n 4) / wall(-n 1) (target at most
    0.30) and the shard imbalance, the largest of the four shards' tokens over the mean (target
    at most 1.10), both as planned (estimated tokens) and as counted.
(b) smollm2 through vLLM, all six tasks: `pytest -n 2` against `pytest -n 0`. On 2 CPU cores two
    engines share the same cores, so expect little gain: the point is the mechanism.

Each run gets a fresh generation cache. Wall times from one run each: compare ratios.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FAKE_TASKS = "mednli or medisumcode or longhealth"
TOKEN_DELAY = "0.003"  # seconds per prompt token: the 109k prompt tokens take about 330 s with -n 1


def run(args: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of one pytest session in its own process group (killed whole if interrupted).
    Prints the machine's load average before and after: on a shared machine it explains outliers."""
    before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate()
    except BaseException:
        os.killpg(proc.pid, 9)
        raise
    seconds = time.perf_counter() - started
    print(f"    pytest {' '.join(a for a in args if not a.startswith('--'))}: {seconds:.1f} s "
          f"(load average {before:.1f} before, {os.getloadavg()[0]:.1f} after)", flush=True)
    if proc.returncode not in (0, 1):  # 1: some gates failed, which is not the point here
        raise SystemExit(f"pytest {' '.join(args)} exited {proc.returncode}:\n{out[-3000:]}")
    return seconds


def fake_models(folder: Path) -> Path:
    path = folder / "models.toml"
    path.write_text(textwrap.dedent("""
        [models.fake-long]
        path = "."
        backend = "fake"
        fake_reply = "The correct answer is A: ENTAILMENT"
        max_model_len = 8192
        """))
    return path


def shard_imbalance(models: Path, workers: int) -> tuple[float, float, float]:
    """The largest shard's tokens over the mean: as planned (estimated prompt plus max new
    tokens), as counted (exact prompt plus max new tokens), and of the prompt tokens alone (what
    the fake engine's delay is charged on; real engines also spend time on answer tokens)."""
    from medgate.models.registry import load_registry
    from medgate.pipeline.model_run import ModelRun, RunSettings
    from medgate.pipeline.shards import assign_shards, imbalance
    from medgate.tasks import TASKS

    spec = load_registry(models).resolve("fake-long")
    run = ModelRun(spec, RunSettings(data_dir=REPO / "fixtures", data_source="synthetic", limit=None))
    requests = run.unique_requests([TASKS[name] for name in ("mednli", "medisumcode", "longhealth")])
    shards = assign_shards({spec.name: run.estimates(requests)}, [f"gw{i}" for i in range(workers)])[spec.name]
    count = run.prompt_context().count_tokens
    prompts = [sum(count("\n".join(m["content"] for m in requests[i][1])) for i in shard.requests) for shard in shards]
    exact = [p + sum(requests[i][2].max_tokens for i in shard.requests) for p, shard in zip(prompts, shards)]
    run.close()
    return imbalance([shard.tokens for shard in shards]), imbalance(exact), imbalance(prompts)


def part_fake() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "tests_medical").mkdir()
        for name in ("test_mednli.py", "test_medisumcode.py", "test_longhealth.py"):
            (folder / "tests_medical" / name).write_text((REPO / "tests_medical" / name).read_text())
        models = fake_models(folder)
        walls = {}
        for delay in ("0", TOKEN_DELAY):
            for n in ("1", "4"):
                env = {**os.environ, "MEDGATE_GENERATIONS": str(folder / f"generations-{n}-{delay}.sqlite"),
                       "MEDGATE_FAKE_TOKEN_DELAY": delay}
                walls[n, delay] = run(["-n", n, "tests_medical", "--model", "fake-long", "-k", FAKE_TASKS,
                                       f"--models-file={models}", f"--data-dir={REPO / 'fixtures'}",
                                       f"--reports-dir={folder / f'reports-{n}'}"], env, folder)
        planned, counted, prompt_only = shard_imbalance(models, 4)
    one, four = walls["1", TOKEN_DELAY], walls["4", TOKEN_DELAY]
    print(f"(a) fake engine, {TOKEN_DELAY} s per prompt token, one model ({FAKE_TASKS}):")
    print(f"    -n 1: {one:7.1f} s    -n 4: {four:7.1f} s")
    print(f"    wall(-n 4) / wall(-n 1) = {four / one:.2f}   (target <= 0.30)")
    print(f"    shard imbalance, largest / mean of 4: planned {planned:.3f}, counted {counted:.3f}   (target <= 1.10); "
          f"prompt tokens alone {prompt_only:.3f}")
    print(f"    fixed costs (no delay): -n 1 {walls['1', '0']:.1f} s, -n 4 {walls['4', '0']:.1f} s")
    return {"n1": one, "n4": four, "planned": planned, "counted": counted, "prompt_only": prompt_only,
            "fixed_n1": walls["1", "0"], "fixed_n4": walls["4", "0"]}


def part_smollm2() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        walls = {}
        for n in ("0", "2"):
            env = {**os.environ, "MEDGATE_GENERATIONS": str(folder / f"generations-{n}.sqlite")}
            walls[n] = run(["-n", n, "tests_medical", "--model", "smollm2", f"--reports-dir={folder / f'reports-{n}'}"],
                           env, REPO)
    print("(b) smollm2 through vLLM (CPU build), all six tasks, one model:")
    print(f"    -n 0: {walls['0']:7.1f} s    -n 2: {walls['2']:7.1f} s    wall(-n 2) / wall(-n 0) = "
          f"{walls['2'] / walls['0']:.2f}   ({os.cpu_count()} CPU cores shared by both engines)")
    return {"n0": walls["0"], "n2": walls["2"]}


if __name__ == "__main__":
    wanted = set(sys.argv[1:]) or {"--fake", "--smollm2"}
    figures = {}
    if "--fake" in wanted:
        figures["fake"] = part_fake()
    if "--smollm2" in wanted:
        figures["smollm2"] = part_smollm2()
    print(json.dumps(figures))
