"""The generation cache: re-runs generate only what is missing, --rejudge loads no model, and a
run killed mid-generation keeps what it finished (fake engine: plumbing only)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medgate.core.types import Completion
from medgate.pipeline.cache import GenerationCache
from tests.conftest import FIXTURES, REPO, engine_events, outcomes, write_models


def medgate(pytester: pytest.Pytester, models: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--models-file={models}", f"--data-dir={FIXTURES}",
        f"--reports-dir={pytester.path / 'reports'}", *args,
    )


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.mkdir("tests_medical")
    (pytester.path / "tests_medical" / "test_mednli.py").write_text((REPO / "tests_medical" / "test_mednli.py").read_text())
    return pytester


def loads(log: Path) -> list[list[str]]:
    return engine_events(log, "load")


def test_cache_round_trip_and_failed_items_are_not_stored(tmp_path):
    cache = GenerationCache(tmp_path / "g.sqlite")
    cache.put_many("m", [("k1", Completion("yes", 3, 1, "stop")), ("k2", Completion("", error="too long"))])
    assert cache.get_many(["k1", "k2", "k3"]) == {"k1": Completion("yes", 3, 1, "stop")}
    assert cache.count() == 1
    # the same file is the BERTScore pair store (the ScoreStore the metric is handed)
    cache.put_scores([("p1", {"bertscore_f1": 0.5})])
    assert cache.get_scores(["p1", "p2"]) == {"p1": {"bertscore_f1": 0.5}}


def test_rerun_generates_nothing_and_loads_no_engine(suite, fake_models, tmp_path, monkeypatch):
    log = tmp_path / "loads.log"
    monkeypatch.setenv("MEDGATE_ENGINE_LOG", str(log))
    first = medgate(suite, fake_models, "tests_medical", "--model", "fake-b")
    assert len(loads(log)) == 1
    before = outcomes(suite.path / "reports")
    second = medgate(suite, fake_models, "tests_medical", "--model", "fake-b")
    assert len(loads(log)) == 1, "a re-run with nothing missing must not load the engine"
    after = outcomes(suite.path / "reports")
    assert [o["value"] for o in after] == [o["value"] for o in before]
    assert after[0]["provenance"]["cached_items"] == after[0]["provenance"]["n_items"] == 33
    assert before[0]["provenance"]["device"] == "none"  # what the fake engine reports when loaded
    assert after[0]["provenance"]["device"] == "none (every answer from the generation cache)"
    assert after[0]["provenance"]["engine"] == "fake"
    assert first.parseoutcomes() == second.parseoutcomes()


def test_rejudge_recomputes_verdicts_without_a_model(suite, fake_models, tmp_path, monkeypatch):
    log = tmp_path / "loads.log"
    monkeypatch.setenv("MEDGATE_ENGINE_LOG", str(log))
    medgate(suite, fake_models, "tests_medical", "--model", "fake-a").assert_outcomes(passed=1, failed=1)
    # The floor was too strict: lower it and re-judge from the stored generations.
    relaxed = write_models(tmp_path / "relaxed.toml", fake_models.read_text().replace("accuracy = 0.9", "accuracy = 0.2"))
    medgate(suite, relaxed, "tests_medical", "--model", "fake-a", "--rejudge").assert_outcomes(passed=2)
    assert len(loads(log)) == 1


def test_rejudge_without_stored_generations_is_a_clear_error(suite, fake_models, tmp_path, monkeypatch):
    log = tmp_path / "loads.log"
    monkeypatch.setenv("MEDGATE_ENGINE_LOG", str(log))
    result = medgate(suite, fake_models, "tests_medical", "--model", "fake-a", "--rejudge")
    result.assert_outcomes(errors=2)
    assert "--rejudge found no stored generation for 33 prompts" in result.stdout.str()
    assert loads(log) == []
    assert medgate(suite, fake_models, "tests_medical", "--rejudge", "--no-cache").ret == pytest.ExitCode.USAGE_ERROR


def test_killed_run_keeps_finished_chunks_and_resumes(suite, fake_models, tmp_path, private_generation_cache):
    env = {**os.environ, "MEDGATE_FAKE_DELAY": "0.1", "MEDGATE_ENGINE_LOG": str(tmp_path / "loads.log")}
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--models-file={fake_models}",
            f"--data-dir={FIXTURES}", f"--reports-dir={suite.path / 'reports'}", "tests_medical",
            "--model", "fake-b", "--chunk-size", "4"]
    proc = subprocess.Popen(args, cwd=suite.path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    stored = 0
    while time.monotonic() < deadline and stored < 8:
        time.sleep(0.2)
        if private_generation_cache.exists():
            with sqlite3.connect(private_generation_cache) as db:
                try:
                    stored = db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
                except sqlite3.OperationalError:
                    stored = 0
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 8 <= stored < 33, "the kill must land mid-generation"
    with sqlite3.connect(private_generation_cache) as db:
        kept = db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    assert kept >= stored and kept % 4 == 0  # whole chunks, nothing torn
    resumed = subprocess.run(args, cwd=suite.path, env={**env, "MEDGATE_FAKE_DELAY": "0"}, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    (first, *_) = outcomes(suite.path / "reports")
    assert first["provenance"]["cached_items"] == kept and first["provenance"]["n_items"] == 33


def test_engine_is_shut_down_once_the_plan_is_generated_and_not_loaded_again(fake_models, monkeypatch):
    import medgate.pipeline.model_run as model_run_module
    from medgate.models.engines.fake import FakeEngine
    from medgate.models.registry import load_registry
    from medgate.pipeline.model_run import ModelRun, RunSettings
    from medgate.tasks import TASKS

    events: list[str] = []

    class Watched(FakeEngine):
        def close(self) -> None:
            events.append("close")

    def make(spec, location):
        events.append("load")
        return Watched(spec)

    monkeypatch.setattr(model_run_module, "make_engine", make)
    spec = load_registry(fake_models).resolve("fake-a")
    session = ModelRun(spec, RunSettings(data_dir=FIXTURES, limit=5))
    tasks = [TASKS["mednli"], TASKS["medisumcode"]]
    session.prefetch(tasks)
    assert events == ["load", "close"]  # scoring runs with the engine's memory already free
    results = [session.result(task) for task in tasks]
    assert [len(r.items) for r in results] == [5, 5] and results[0].metrics["accuracy"] > 0
    session.close()
    assert events == ["load", "close"]


class VllmLike:
    """Uses its progress factory as vLLM's LLM.chat does: a bar wrapping the chats while it renders
    them, then a bar updated per finished request with the token speeds in its postfix."""

    def generate(self, chats, params, *, progress=None):
        for _ in progress(list(chats), desc="Rendering conversations"):
            pass
        bar = progress(total=len(chats), desc="Processed prompts", postfix="est. speed input: 0.00 toks/s")
        for _ in chats:
            bar.postfix = f"est. speed input: {100 / bar.format_dict['elapsed']:.2f} toks/s, output: 0.00 toks/s"
            bar.update(1)
        bar.close()
        return [Completion("x", prompt_tokens=10, completion_tokens=2, finish_reason="stop") for _ in chats]


def test_a_fill_reports_prompts_and_tokens_as_a_vllm_engine_moves_its_bars(tmp_path):
    from medgate.core.types import GenParams
    from medgate.pipeline.caching import CachingEngine

    cache = GenerationCache(tmp_path / "g.sqlite")
    cache.put_many("m", [("k0", Completion("cached", 1, 1, "stop"))])
    seen: list[tuple[int, int]] = []
    engine = CachingEngine(VllmLike, cache, model="m", chunk_size=3)
    requests = [(f"k{i}", [{"role": "user", "content": f"q{i}"}], GenParams(max_tokens=4)) for i in range(8)]
    engine.fill(requests, "all tasks", on_progress=lambda done, tokens: seen.append((done, tokens)))
    done = [d for d, _ in seen]
    assert done[0] == 1 and done == sorted(done) and done[-1] == 8  # the cached one first, then each prompt
    assert [t for d, t in seen if d in (4, 7, 8)][-1] == 7 * 12  # exact totals at each chunk's end
    assert (4, 36) in seen and (7, 72) in seen
    assert len(engine.answers([k for k, _, _ in requests])) == 8
