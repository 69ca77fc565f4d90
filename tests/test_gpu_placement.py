"""GPU placement per xdist worker, with pretended device counts (no GPU on these machines)."""

from __future__ import annotations

import pytest

from tests.conftest import FIXTURES, REPO, engine_events, write_models


@pytest.fixture
def tp_models(tmp_path):
    return write_models(tmp_path / "models.toml", """
        [models.big]
        path = "."
        backend = "vllm"
        tensor_parallel_size = 2
        [models.small]
        path = "."
        backend = "vllm"
        [models.cluster]
        path = "."
        backend = "vllm"
        tensor_parallel_size = 8
        distributed_executor_backend = "ray"
        """)


def probe(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe="""
        import os
        def test_devices(medgate_model):
            print("DEVICES", os.environ.get("PYTEST_XDIST_WORKER"), medgate_model.run.spec.name, os.environ.get("CUDA_VISIBLE_DEVICES"))
        """)


def test_each_worker_gets_its_own_block_sized_by_tensor_parallelism(pytester, tp_models, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")  # pretend four GPUs
    probe(pytester)
    # -rA shows each passed test's captured output: what each worker's environment held
    result = pytester.runpytest_subprocess(f"--models-file={tp_models}", "-n", "2", "--model", "big", "--model", "small", "-rA")
    result.assert_outcomes(passed=2)
    lines = [l for l in result.stdout.lines if "DEVICES" in l]
    blocks = {line.split()[-3]: line.split()[-1] for line in lines}
    assert sorted(blocks.values()) == ["0,1", "2,3"]


def test_too_few_gpus_is_a_usage_error_before_any_load(pytester, tp_models, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    probe(pytester)
    result = pytester.runpytest_subprocess(f"--models-file={tp_models}", "-n", "2", "--model", "big", "--model", "small")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "2 workers x 2 GPUs per engine (tensor_parallel_size x pipeline_parallel_size) need 4 GPUs, but 3 are " \
           "visible" in result.stderr.str()


def test_ray_placed_models_pin_nothing(pytester, tp_models, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    probe(pytester)
    result = pytester.runpytest_subprocess(f"--models-file={tp_models}", "--model", "cluster", "--collect-only", "-q")
    assert result.ret == 0


def test_data_parallel_workers_of_one_model_load_their_engines_on_their_own_blocks(pytester, tmp_path, monkeypatch):
    """-n 2 with one model: both workers generate a shard, each engine on its own pair of GPUs."""
    models = write_models(tmp_path / "models.toml", """
        [models.pair]
        path = "."
        backend = "fake"
        fake_reply = "ENTAILMENT"
        fake_gpus = 2
        """)
    log = tmp_path / "engine.log"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")  # pretend four GPUs
    monkeypatch.setenv("MEDGATE_ENGINE_LOG", str(log))
    pytester.mkdir("tests_medical")
    (pytester.path / "tests_medical" / "test_mednli.py").write_text((REPO / "tests_medical" / "test_mednli.py").read_text())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--models-file={models}", f"--data-dir={FIXTURES}",
                                           f"--reports-dir={pytester.path / 'reports'}", "-n", "2", "--model", "pair",
                                           "tests_medical")
    result.assert_outcomes(skipped=2)
    loads = sorted((worker, devices) for _, _, worker, devices in engine_events(log, "load"))
    assert loads == [("gw0", "0,1"), ("gw1", "2,3")]


def test_without_gpus_each_worker_binds_its_vllm_engine_to_its_own_cores(pytester, tp_models, monkeypatch):
    import os

    from medgate.plugin.devices import cpu_block

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a machine without GPUs
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    pytester.makepyfile(test_probe="""
        import os
        def test_cores(medgate_model):
            print("CORES", os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("VLLM_CPU_OMP_THREADS_BIND"))
        """)
    result = pytester.runpytest_subprocess(f"--models-file={tp_models}", "-n", "2", "--model", "small", "-rA")
    result.assert_outcomes(passed=1)
    cores = sorted(os.sched_getaffinity(0))
    (line,) = [l.split() for l in result.stdout.lines if l.startswith("CORES")]
    expected = ",".join(map(str, cpu_block(int(line[1][2:]), 2, cores))) or "None"
    assert line[2] == expected
