"""Fast unit tests of judging/ (baseline files, comparison bookkeeping, verdict messages) without a
pytest session: the mutation run (scripts/mutation) relies on them to see what the session tests
see only slowly."""

from __future__ import annotations

import json

import pytest

from medgate.core.errors import BaselineError, ConfigError
from medgate.core.types import ItemRecord, TaskResult
from medgate.judging.baselines import (baseline_path, baseline_reference, check_baseline, check_baseline_fits,
                                       load_baseline, save_baseline)

PROV = {"dataset_hash": "sha256:x", "prompt_version": "p1", "decoding": {"max_tokens": 20}, "limit": 3,
        "model_location": "/home/me/w", "dataset": "/data/x.jsonl", "reference_dir": "/ref", "prompt_source": "s"}


def result(model: str = "m", task: str = "mednli") -> TaskResult:
    items = [ItemRecord(id="a", scores={"accuracy": 1.0}, prompt_tokens=1, completion_tokens=1, output="secret"),
             ItemRecord(id="b", scores={"accuracy": 0.0}, prompt_tokens=1, completion_tokens=1, output=""),
             ItemRecord(id="c", scores={}, prompt_tokens=1, completion_tokens=0, output="", error="boom")]
    return TaskResult(task=task, model=model, metrics={"accuracy": 0.5}, items=items, provenance=dict(PROV))


def test_a_saved_baseline_holds_scores_and_portable_provenance_only(tmp_path):
    path = save_baseline(tmp_path, "v1", result(), {"medgate": "0.1"})
    assert path == tmp_path / "v1" / "m" / "mednli.json" == baseline_path(tmp_path, "v1", "m", "mednli")
    body = json.loads(path.read_text(encoding="utf-8"))
    assert (body["name"], body["model"], body["task"], body["metrics"]) == ("v1", "m", "mednli", {"accuracy": 0.5})
    assert body["items"] == [{"id": "a", "scores": {"accuracy": 1.0}}, {"id": "b", "scores": {"accuracy": 0.0}}]
    assert "secret" not in path.read_text(encoding="utf-8")  # outputs stay out
    assert body["provenance"] == {"dataset_hash": "sha256:x", "prompt_version": "p1", "decoding": {"max_tokens": 20},
                                  "limit": 3, "prompt_source": "s", "packages": {"medgate": "0.1"}}
    ref = baseline_reference(tmp_path, "v1", "m", "mednli")
    assert ref.label == "baseline v1" and ref.scores == {"a": {"accuracy": 1.0}, "b": {"accuracy": 0.0}}
    assert ref.provenance["dataset_hash"] == "sha256:x"
    assert baseline_reference(tmp_path, "v1", "m", "mednli", label="m@v1").label == "m@v1"


def test_missing_unreadable_and_foreign_baselines_are_named(tmp_path):
    with pytest.raises(BaselineError, match=r"mednli\.json: no baseline 'v1' for model m and task mednli; save one "
                                            r"with --save-baseline v1$"):
        load_baseline(tmp_path, "v1", "m", "mednli")
    path = baseline_path(tmp_path, "v1", "m", "mednli")
    path.parent.mkdir(parents=True)
    path.write_text("{", encoding="utf-8")
    with pytest.raises(BaselineError, match=r"mednli\.json: unreadable baseline \("):
        load_baseline(tmp_path, "v1", "m", "mednli")
    for body in ([], {"items": {}, "provenance": {}}, {"items": []}, {"provenance": {}}):
        path.write_text(json.dumps(body), encoding="utf-8")
        with pytest.raises(BaselineError, match=r"mednli\.json: not a medgate baseline file$"):
            load_baseline(tmp_path, "v1", "m", "mednli")
    path.write_text(json.dumps({"items": [], "provenance": {}}), encoding="utf-8")
    assert load_baseline(tmp_path, "v1", "m", "mednli") == {"items": [], "provenance": {}}
    with pytest.raises(ConfigError, match="baseline name"):
        baseline_path(tmp_path, "../x", "m", "mednli")


def test_check_baseline_lists_what_is_saved(tmp_path):
    with pytest.raises(ConfigError, match=r"^--baseline v1: no such baseline in .* \(saved: none\); save one with "
                                          r"--save-baseline v1 on the run to compare with$"):
        check_baseline(tmp_path / "nowhere", "v1", ["m"])
    save_baseline(tmp_path, "v0", result(), {})
    save_baseline(tmp_path, "v2", result("n"), {})
    (tmp_path / "stray.txt").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\(saved: v0, v2\)"):
        check_baseline(tmp_path, "v1", ["m"])
    save_baseline(tmp_path, "v2", result("k"), {})
    check_baseline(tmp_path, "v2", ["n", "k"])
    with pytest.raises(ConfigError, match=r"^--baseline v2: holds no results of model m \(it holds: k, n\)$"):
        check_baseline(tmp_path, "v2", ["n", "m"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"\(it holds: none\)$"):
        check_baseline(tmp_path, "empty", ["m"])


def test_check_baseline_fits_compares_what_this_run_expects(tmp_path):
    save_baseline(tmp_path, "v1", result(), {})
    check_baseline_fits(tmp_path, "v1", "m", {"mednli": {"dataset_hash": "sha256:x", "limit": 3},
                                              "meqsum": {"dataset_hash": "other"}})  # meqsum: not in the baseline
    with pytest.raises(ConfigError, match=r"^--against m@v1: .*mednli\.json has dataset_hash 'sha256:x', this run "
                                          r"'sha256:y'; a baseline of other data, prompts or items cannot be compared$"):
        check_baseline_fits(tmp_path, "v1", "m", {"mednli": {"dataset_hash": "sha256:y"}})
    with pytest.raises(ConfigError, match="has limit 3, this run 5"):
        check_baseline_fits(tmp_path, "v1", "m", {"mednli": {"limit": 5}})
    old = result()
    old.provenance.pop("limit")
    save_baseline(tmp_path, "old", old, {})
    check_baseline_fits(tmp_path, "old", "m", {"mednli": {"limit": 5}})  # written before the limit was recorded
    with pytest.raises(ConfigError, match="has missing None, this run 'p1'"):  # a key the baseline lacks
        check_baseline_fits(tmp_path, "old", "m", {"mednli": {"missing": "p1"}})
