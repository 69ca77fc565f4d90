import pytest
from hypothesis import given
from hypothesis import strategies as st

from medgate.core.errors import ConfigError
from medgate.plugin.devices import assign_devices, cpu_block, visible_pool


def test_blocks_follow_worker_index_and_tensor_parallel_size():
    pool = [str(i) for i in range(8)]
    assert [assign_devices(w, 4, 2, pool) for w in range(4)] == [["0", "1"], ["2", "3"], ["4", "5"], ["6", "7"]]
    assert assign_devices(1, 2, 1, ["3", "5"]) == ["5"]  # ids come from CUDA_VISIBLE_DEVICES, not 0..n


def test_too_few_gpus_is_a_usage_error():
    with pytest.raises(ConfigError, match=r"4 workers x 4 GPUs per engine \(tensor_parallel_size x "
                                          r"pipeline_parallel_size\) need 16 GPUs, but 8 are visible"):
        assign_devices(0, 4, 4, [str(i) for i in range(8)])


def test_cpu_machine_assigns_nothing():
    assert assign_devices(3, 4, 8, []) == []


@given(st.integers(1, 8), st.integers(1, 8), st.integers(0, 16))
def test_blocks_are_disjoint_and_complete(workers, tp, spare):
    pool = [f"g{i}" for i in range(workers * tp + spare)]
    blocks = [assign_devices(w, workers, tp, pool) for w in range(workers)]
    flat = [d for b in blocks for d in b]
    assert all(len(b) == tp for b in blocks)
    assert len(set(flat)) == len(flat) == workers * tp


def test_visible_pool_reads_cuda_visible_devices():
    assert visible_pool({"CUDA_VISIBLE_DEVICES": "2, 3,5"}) == ["2", "3", "5"]
    assert visible_pool({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_pool({"CUDA_VISIBLE_DEVICES": "-1"}) == []


def test_without_gpus_each_worker_gets_its_own_cores():
    assert [cpu_block(w, 2, [0, 1]) for w in range(2)] == [[0], [1]]
    assert [cpu_block(w, 3, range(8)) for w in range(3)] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert cpu_block(0, 4, [0, 1]) == [] and cpu_block(5, 4, range(8)) == []  # too few cores; a replacement worker


@given(st.integers(1, 8), st.integers(0, 64))
def test_core_blocks_are_disjoint_complete_and_even(workers, cores):
    blocks = [cpu_block(w, workers, list(range(cores))) for w in range(workers)]
    flat = [c for b in blocks for c in b]
    if cores < workers:
        assert flat == []
    else:
        assert flat == list(range(cores)) and max(map(len, blocks)) - min(map(len, blocks)) <= 1
