import pytest
from hypothesis import given
from hypothesis import strategies as st

from medgate.core.errors import ConfigError
from medgate.plugin.devices import assign_devices, visible_pool


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
