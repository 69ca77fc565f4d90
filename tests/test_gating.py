from medgate.core.types import ItemRecord, TaskResult
from medgate.judging.verdict import check
from medgate.tasks.mednli import TASK


def result(value, errors=0):
    items = [ItemRecord(id=str(i), scores={}, prompt_tokens=1, completion_tokens=1, output="", error="boom" if i < errors else None)
             for i in range(4)]
    return TaskResult(task="mednli", model="m", metrics={"accuracy": value, "no_label_rate": value}, items=items)


def test_floor_and_ceiling():
    assert check(result(0.6), TASK.metrics["accuracy"], 0.5).status == "pass"
    failed = check(result(0.4), TASK.metrics["accuracy"], 0.5)
    assert failed.status == "fail"
    assert failed.message == "m mednli accuracy = 0.4000 is below the floor 0.5000"
    assert check(result(0.5), TASK.metrics["accuracy"], 0.5).status == "pass"  # the floor itself passes
    assert check(result(0.3), TASK.metrics["no_label_rate"], 0.2).status == "fail"  # lower is better
    assert check(result(0.1), TASK.metrics["no_label_rate"], 0.2).status == "pass"


def test_missing_threshold_value_and_errors():
    assert check(result(0.4), TASK.metrics["accuracy"], None).status == "no_threshold"
    assert check(result(None), TASK.metrics["accuracy"], 0.5).status == "not_computed"
    err = check(result(0.9, errors=2), TASK.metrics["accuracy"], 0.5)
    assert err.status == "error" and "2 of 4 items" in err.message and "item 0: boom" in err.message
