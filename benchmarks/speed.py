"""Speed of the suite against the raw engine and the reference flow, measured in one run.

    python benchmarks/speed.py            # smollm2, all six tasks on the shipped fixtures

(a) raw engine: load the model, then every prompt of every task in one `llm.chat` call
(b) the suite: `pytest tests_medical --model smollm2 --no-cache` (load, generate, score, report)
(c) the reference flow: a new engine per task, as the paper's scripts do (load + chat, six times)
(d) the suite re-run with a filled generation cache (no engine loads)
Prints wall times, the ratios b/a, c/b, d/b and each part's peak memory (largest process RSS).
Each part runs in a fresh process; run it on an otherwise idle machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def prompts_by_task(model: str) -> dict[str, tuple[list, dict]]:
    from medgate.models.fingerprint import resolve_location
    from medgate.models.registry import load_registry
    from medgate.models.tokenization import model_context
    from medgate.pipeline.plan import plan_task
    from medgate.tasks import TASKS

    spec = load_registry(REPO / "models.toml").resolve(model)
    location = resolve_location(spec)
    context = model_context(spec, location)
    out = {}
    for name, task in TASKS.items():
        plan = plan_task(task, REPO / "fixtures", None, context if task.prepare else None)
        out[name] = ([list(map(dict, c)) for c in plan.chats], plan.params.describe())
    return out


def part_engine(model: str, per_task: bool) -> None:
    """(a) one engine and one call for everything, or (c) one engine per task."""
    import vllm

    from medgate.models.engines import backend_of
    from medgate.models.fingerprint import resolve_location
    from medgate.models.registry import load_registry

    spec = load_registry(REPO / "models.toml").resolve(model)
    location = resolve_location(spec)
    opts = backend_of(spec).settings(spec)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(opts["cpu_kv_cache_gib"]))
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    plans = prompts_by_task(model)
    started = time.perf_counter()

    def engine():
        return vllm.LLM(model=location, dtype=spec.dtype, max_model_len=spec.max_model_len, seed=spec.seed,
                        enforce_eager=opts["enforce_eager"], enable_prefix_caching=True)

    def params(p):
        return vllm.SamplingParams(temperature=p["temperature"], top_p=p["top_p"], seed=p["seed"], max_tokens=p["max_tokens"])

    if per_task:
        for chats, p in plans.values():
            llm = engine()
            llm.chat(chats, [params(p)] * len(chats), use_tqdm=False)
            llm.llm_engine.engine_core.shutdown()
            del llm
    else:
        llm = engine()
        chats = [c for cs, _ in plans.values() for c in cs]
        sampling = [params(p) for cs, p in plans.values() for _ in cs]
        llm.chat(chats, sampling, use_tqdm=False)
        llm.llm_engine.engine_core.shutdown()
    print(json.dumps({"seconds": time.perf_counter() - started, "prompts": sum(len(c) for c, _ in plans.values())}))


def meter(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run a command in a fresh meter process: wall time and the peak RSS of its process tree."""
    code = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "s = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps({'wall': s, 'peak_mib': peak, 'rc': p.returncode, 'tail': p.stdout[-400:] + p.stderr[-400:]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, env=env, cwd=REPO)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    model = "smollm2"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MEDGATE_GENERATIONS": str(Path(tmp) / "generations.sqlite")}
        suite = [sys.executable, "-m", "pytest", "tests_medical", "--model", model, "-q", "-p", "no:cacheprovider",
                 f"--reports-dir={Path(tmp) / 'reports'}"]
        results = {
            "a": meter([sys.executable, __file__, "--part", "raw"], env),
            "b": meter(suite + ["--no-cache"], env),
            "c": meter([sys.executable, __file__, "--part", "reference"], env),
        }
        meter(suite, env)  # fill the cache (not timed)
        results["d"] = meter(suite, env)
    for key, r in results.items():
        if r["rc"] not in (0,):
            print(f"part {key} exited {r['rc']}: {r['tail']}", file=sys.stderr)
    a, b, c, d = (results[k]["wall"] for k in "abcd")
    print(f"(a) raw engine, one llm.chat call:  {a:8.1f} s   peak {results['a']['peak_mib']:7.0f} MiB")
    print(f"(b) the suite, no cache:            {b:8.1f} s   peak {results['b']['peak_mib']:7.0f} MiB")
    print(f"(c) reference flow, engine per task:{c:8.1f} s   peak {results['c']['peak_mib']:7.0f} MiB")
    print(f"(d) the suite, cached re-run:       {d:8.1f} s   peak {results['d']['peak_mib']:7.0f} MiB")
    print(f"b/a = {b / a:.2f}   (target <= 1.10)")
    print(f"c/b = {c / b:.2f}")
    print(f"d/b = {d / b:.3f}  (target <= 0.05)")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--part":
        part_engine("smollm2", per_task=sys.argv[2] == "reference")
    else:
        main()
