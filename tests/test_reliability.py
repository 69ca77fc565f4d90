"""Bad input, dying engines, concurrent workers and secrets, in whole pytest sessions."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.conftest import FIXTURES, REPO, outcomes, write_models


def medgate(pytester, models, *args, data_dir=FIXTURES):
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--models-file={models}", f"--data-dir={data_dir}",
        f"--reports-dir={pytester.path / 'reports'}", *args)


@pytest.fixture
def suite(pytester):
    pytester.mkdir("tests_medical")
    for name in ("test_mednli.py", "test_medisumcode.py"):
        (pytester.path / "tests_medical" / name).write_text((REPO / "tests_medical" / name).read_text())
    return pytester


def test_unreadable_file_is_an_error_naming_it(suite, fake_models, tmp_path):
    data = tmp_path / "data"
    (data / "mli_test_v1.jsonl").mkdir(parents=True)  # a folder where the file should be
    result = medgate(suite, fake_models, "tests_medical/test_mednli.py", "--model", "fake-a", data_dir=data)
    result.assert_outcomes(errors=2)
    assert f"{data / 'mli_test_v1.jsonl'}: cannot read file" in result.stdout.str()


def test_a_dying_engine_errors_its_model_only_and_keeps_finished_generations(suite, fake_models, monkeypatch,
                                                                              private_generation_cache):
    monkeypatch.setenv("MEDGATE_FAKE_DIE_AFTER", "fake-a:8")
    result = medgate(suite, fake_models, "tests_medical", "--model", "fake-a", "--model", "fake-b", "--chunk-size", "4")
    parsed = result.parseoutcomes()
    assert parsed["errors"] == 9  # every fake-a test: 2 MedNLI + 7 MeDiSumCode metrics
    assert "the engine died after 8 answers" in result.stdout.str()
    by_model = {}
    for o in outcomes(suite.path / "reports"):
        by_model.setdefault(o["model"], set()).add(o["status"])
    assert by_model["fake-a"] == {"error"} and "error" not in by_model["fake-b"]
    with sqlite3.connect(private_generation_cache) as db:
        kept = dict(db.execute("SELECT model, COUNT(*) FROM generations GROUP BY model").fetchall())
    assert kept["fake-a"] == 8  # two whole chunks of 4 were stored before the engine died
    assert kept["fake-b"] == 33 + 22


def test_a_missing_model_folder_errors_that_model_and_the_others_still_run(suite, tmp_path):
    models = write_models(tmp_path / "models.toml", """
        [models.gone]
        path = "no-such-folder"
        [models.fake]
        path = "."
        backend = "fake"
        fake_reply = "ENTAILMENT"
        """)
    result = medgate(suite, models, "tests_medical/test_mednli.py", "--model", "gone", "--model", "fake")
    result.assert_outcomes(errors=2, skipped=2)
    assert f"model gone: the model folder {tmp_path / 'no-such-folder'} does not exist" in result.stdout.str()


def test_workers_share_the_cache_and_write_baselines_and_reports_safely(suite, fake_models, private_generation_cache):
    result = medgate(suite, fake_models, "tests_medical", "-n", "2", "--model", "fake-a", "--model", "fake-b",
                     "--save-baseline", "par")
    assert "errors" not in result.parseoutcomes()
    with sqlite3.connect(private_generation_cache) as db:
        assert db.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == 2 * (33 + 22)
    for model in ("fake-a", "fake-b"):
        for task in ("mednli", "medisumcode"):
            saved = json.loads((suite.path / "reports" / "baselines" / "par" / model / f"{task}.json").read_text())
            assert saved["model"] == model and len(saved["items"]) == {"mednli": 33, "medisumcode": 22}[task]
    assert len(outcomes(suite.path / "reports")) == 2 * 9
    assert not list((suite.path / "reports").rglob("*.tmp"))


def test_tokens_never_reach_any_output_file(suite, fake_models, monkeypatch, private_generation_cache):
    canaries = {"HF_TOKEN": "hf_medgateCanary0001", "HUGGING_FACE_HUB_TOKEN": "hf_medgateCanary0002",
                "MEDGATE_OPENAI_API_KEY": "sk-medgateCanary0003"}
    for name, value in canaries.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CI", "true")
    result = medgate(suite, fake_models, "tests_medical", "--model", "fake-a", "--save-baseline", "b", "-rA")
    from medgate.cli import build_html

    build_html(suite.path / "reports")
    files = [p for p in (suite.path / "reports").rglob("*") if p.is_file()] + [private_generation_cache]
    assert len(files) > 20
    for path in files:
        data = path.read_bytes()
        for value in canaries.values():
            assert value.encode() not in data, f"{value} leaked into {path}"
    for value in canaries.values():
        assert value not in result.stdout.str() + result.stderr.str()


def _words(chat) -> int:
    return sum(len(m["content"].split()) for m in chat)  # the fake engine's token count


def test_a_prompt_longer_than_the_context_errors_its_task_naming_the_item(suite, tmp_path):
    from medgate.pipeline.plan import plan_task
    from medgate.tasks import TASKS

    plan = plan_task(TASKS["mednli"], FIXTURES)
    lengths = sorted(_words(c) for c in plan.chats)
    limit = lengths[len(lengths) // 2]  # about half of the prompts do not fit
    too_long = [item.id for item, chat in zip(plan.items, plan.chats) if _words(chat) >= limit]
    models = write_models(tmp_path / "models.toml", f"""
        [models.tiny]
        path = "."
        backend = "fake"
        fake_reply = "ENTAILMENT"
        max_model_len = {limit}
        """)
    result = medgate(suite, models, "tests_medical/test_mednli.py", "--model", "tiny")
    out = result.stdout.str()
    result.assert_outcomes(errors=2)
    assert f"tiny mednli: {len(too_long)} of 33 items could not be generated (first: item {too_long[0]}: prompt of " in out
    assert f"tokens does not fit the context of {limit} tokens)" in out and "Traceback" not in out
    assert {o["status"] for o in outcomes(suite.path / "reports")} == {"error"}


def test_over_long_few_shot_examples_are_named_not_the_first_item(suite, tmp_path):
    from medgate.pipeline.plan import plan_task
    from medgate.tasks import TASKS

    plan = plan_task(TASKS["mednli"], FIXTURES)
    models = write_models(tmp_path / "models.toml", """
        [models.tiny]
        path = "."
        backend = "fake"
        fake_reply = "ENTAILMENT"
        max_model_len = 40
        """)
    result = medgate(suite, models, "tests_medical/test_mednli.py", "--model", "tiny")
    result.assert_outcomes(errors=2)
    shots = ", ".join(s.id for s in plan.shots)
    assert (f"every one of the 33 prompts is longer than the context (the shortest has {min(map(_words, plan.chats))} "
            f"tokens): the system prompt and the few-shot examples ({shots}) alone may not fit") in result.stdout.str()
