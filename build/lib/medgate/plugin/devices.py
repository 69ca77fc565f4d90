"""Which GPUs each xdist worker may use: pure logic, a CUDA-free device count, and the pinning
of a worker before anything touches CUDA."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Sequence

from medgate.core.errors import ConfigError
from medgate.models.engines import backend_of
from medgate.models.spec import ModelSpec


def visible_pool(environ: dict[str, str] | None = None) -> list[str]:
    """GPU ids this run may use, found without initialising CUDA (workers set their own later)."""
    env = os.environ if environ is None else environ
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, _ in enumerate(l for l in out.splitlines() if l.startswith("GPU "))]


def assign_devices(worker_index: int, n_workers: int, gpus_per_worker: int, pool: list[str]) -> list[str]:
    """The devices of worker ``worker_index``: a disjoint block of ``gpus_per_worker`` ids.

    Raises ConfigError when the pool cannot give every worker its block; with an empty pool
    (a CPU machine) nothing is assigned.
    """
    if not pool:
        return []
    if gpus_per_worker < 1:
        raise ConfigError(f"GPUs per worker must be at least 1, got {gpus_per_worker}")
    needed = n_workers * gpus_per_worker
    if needed > len(pool):
        raise ConfigError(
            f"{n_workers} workers x {gpus_per_worker} GPUs per engine (tensor_parallel_size x pipeline_parallel_size) "
            f"need {needed} GPUs, but {len(pool)} are visible ({','.join(pool)}); use fewer workers (-n) or fewer "
            f"GPUs per engine"
        )
    start = worker_index * gpus_per_worker
    return pool[start : start + gpus_per_worker]


def cpu_block(worker_index: int, n_workers: int, cpus: Sequence[int]) -> list[int]:
    """The CPU cores of worker ``worker_index`` where there is no GPU: a contiguous, disjoint
    share of ``cpus``; empty when there are fewer cores than workers (then nothing is pinned)."""
    if len(cpus) < n_workers or not 0 <= worker_index < n_workers:
        return []
    ordered = sorted(cpus)
    base, extra = divmod(len(ordered), n_workers)
    start = worker_index * base + min(worker_index, extra)
    return ordered[start : start + base + (worker_index < extra)]


def place_worker(config: Any, models: Sequence[ModelSpec]) -> None:
    """Pin an xdist worker to its own GPUs (``CUDA_VISIBLE_DEVICES``) before anything touches
    CUDA; on the controller, fail early when there are too few GPUs for every worker. Without
    GPUs, a worker's vLLM CPU engine gets its own cores instead: two engines that each bind
    every core would take turns on all of them."""
    per_worker = max((backend_of(m).gpus(m) for m in models), default=0)
    if per_worker == 0:  # fake, server or Ray-placed models: nothing to pin on this node
        return
    pool = visible_pool()
    if hasattr(config, "workerinput"):
        index = int(str(config.workerinput["workerid"]).removeprefix("gw"))
        n_workers = int(config.workerinput["workercount"])
        devices = assign_devices(index, n_workers, per_worker, pool)
        if devices:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
        elif not pool and per_worker == 1:
            # one engine rank per worker (no tensor or pipeline parallelism on CPU): the engine's CPU
            # build binds its threads to these cores; a user's own setting wins
            cores = cpu_block(index, n_workers, sorted(os.sched_getaffinity(0)))
            for env in {backend_of(m).cpu_bind_env for m in models} - {None}:
                if cores and env not in os.environ:
                    os.environ[env] = ",".join(map(str, cores))
    else:
        workers = getattr(config.option, "numprocesses", None)
        n = workers if isinstance(workers, int) and workers > 0 else 1
        assign_devices(0, n, per_worker, pool)
