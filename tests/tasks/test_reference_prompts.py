"""`--prompts reference:DIR`: the reference's prompts read from a checkout (a fake one with
invented texts, tests/reference_checkout.py), without running it, and chats built as the
reference builds them."""

from __future__ import annotations

import ast
import csv
import json
import runpy
import shutil
import sys
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from medgate.core.errors import ConfigError, DataError
from medgate.models.engines.fake import whitespace_context
from medgate.pipeline.plan import plan_task
from medgate.tasks import TASKS, load_prompts
from medgate.tasks import longhealth as lh
from medgate.tasks.reference_prompts import git_commit, module_constants, parse_prompt_spec
from tests.conftest import FIXTURES
from tests.reference_checkout import COMMIT, FILES, MARKER, TEXTS, longhealth_user, reference_chats, write_checkout

FEWSHOT_TASKS = ["mednli", "meqsum", "problem_summary", "medisumqa", "medisumcode"]


@pytest.fixture
def checkout(tmp_path):
    return write_checkout(tmp_path / "CLUE")


def test_reads_every_constant_without_running_the_scripts(checkout, tmp_path):
    source = load_prompts(f"reference:{checkout}", tmp_path)
    assert source.directory == checkout / "eval" and source.commit == COMMIT
    assert {task: dict(texts) for task, texts in source.templates.items()} == TEXTS
    assert not (checkout / "eval" / MARKER).exists()  # nothing ran


def test_what_is_read_equals_what_python_computes_when_it_runs_the_script(checkout, monkeypatch):
    """The reader's evaluation of literals, names and + agrees with running the file."""
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=None, SamplingParams=None))
    monkeypatch.setitem(sys.modules, "utils", types.SimpleNamespace(build_messages=None))
    source = load_prompts(f"reference:{checkout / 'eval'}", checkout)
    for task, name in FILES.items():
        namespace = runpy.run_path(str(checkout / "eval" / name), run_name="not_main")
        assert {k: namespace[k] for k in TEXTS[task]} == dict(source.templates[task])
    assert (checkout / "eval" / MARKER).exists()  # running it does leave its trace


@given(st.lists(st.text(max_size=8), min_size=1, max_size=6), st.booleans())
def test_concatenations_evaluate_as_python_does(pieces, implicit):
    joined = " ".join(map(repr, pieces)) if implicit else " + ".join(map(repr, pieces))
    code = f"start = {pieces[0]!r}\nvalue = ({joined})\nvalue += start\n"
    namespace: dict = {}
    exec(code, namespace)
    assert module_constants(ast.parse(code))["value"] == namespace["value"]


@pytest.mark.parametrize("layout", ["loose", "packed", "detached"])
def test_commit_is_read_from_the_git_files(tmp_path, layout):
    root = write_checkout(tmp_path / "CLUE", git=layout)
    assert git_commit(root / "eval") == COMMIT


def test_no_checkout_no_commit_and_a_linked_worktree_reads_the_main_repository(tmp_path):
    plain = write_checkout(tmp_path / "plain", git="none")
    source = load_prompts(f"reference:{plain}", tmp_path)
    assert source.commit is None and source.provenance("mednli")["reference_commit"].startswith("unknown")
    main = write_checkout(tmp_path / "main")
    worktree_git = main / ".git" / "worktrees" / "wt"
    worktree_git.mkdir(parents=True)
    (worktree_git / "HEAD").write_text("ref: refs/heads/main\n")
    (worktree_git / "commondir").write_text("../..\n")
    linked = write_checkout(tmp_path / "linked", git="none")
    (linked / ".git").write_text(f"gitdir: {worktree_git}\n")
    assert git_commit(linked / "eval") == COMMIT


def test_prompt_spec_syntax():
    assert parse_prompt_spec("medgate") is None
    assert str(parse_prompt_spec("reference:/x/CLUE")) == "/x/CLUE"
    for bad in ("reference:", "reference", "clue:/x", ""):
        with pytest.raises(ValueError, match="expected 'medgate' or 'reference:DIR'"):
            parse_prompt_spec(bad)


def replace_in(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        ("eval_mednli.py", None, "eval_mednli.py: file not found"),
        ("eval_meqsum.py", ("user_prompt_template =", "user_prompt =") , "eval_meqsum.py: user_prompt_template: not defined at module level"),
        ("eval_MeDiSumQA.py", ("{Question}", "{question}"), "eval_MeDiSumQA.py: user_prompt_template: missing placeholder {Question}"),
        ("eval_mednli.py", ("'{gold_label}'", "'{gold_label} {pairID}'"), "eval_mednli.py: assistant_response_template: placeholder {pairID} is not one medgate fills"),
        ("eval_MeDiSumCode.py", ('+ "{codes}"', '+ "{codes"'), "eval_MeDiSumCode.py: assistant_response_template: not a valid format template"),
        ("eval_MeDiSumCode.py", ("assistant_response_start = ", "assistant_response_start = 3 * "), "eval_MeDiSumCode.py: assistant_response_template: refers to assistant_response_start, which is not a string constant"),
        ("eval_LongHealth.py", ("prompt_template = ", "prompt_template = f"), "eval_LongHealth.py: prompt_template: an f-string (line "),
        ("eval_LongHealth.py", ("{options}", ""), "eval_LongHealth.py: prompt_template: missing placeholder {options}"),
        ("eval_ProblemSummary.py", ('if __name__ == "__main__":\n', 'if __name__ == "__main__":\n    sys_prompt = "other"\n'),
         "eval_ProblemSummary.py: sys_prompt: assigned inside a block"),
        ("eval_meqsum.py", ("max_tokens = 512", "max_tokens = 512 +"), "eval_meqsum.py: not valid Python (line "),
        ("eval_mednli.py", ("import random\n", "import random\nfrom prompts import sys_prompt\n"), None),  # a later binding wins
    ],
)
def test_problems_are_one_line_naming_the_file_and_the_name(checkout, tmp_path, file, change, message):
    script = checkout / "eval" / file
    if change is None:
        script.unlink()
    else:
        replace_in(script, *change)
    if message is None:
        assert load_prompts(f"reference:{checkout}", tmp_path).templates["mednli"]["sys_prompt"] == TEXTS["mednli"]["sys_prompt"]
        return
    with pytest.raises(ConfigError) as err:
        load_prompts(f"reference:{checkout}", tmp_path)
    assert str(err.value).startswith(str(checkout / "eval" / file)) and message.split(": ", 1)[1] in str(err.value)
    assert "\n" not in str(err.value)


def test_an_imported_constant_is_refused_not_guessed(checkout, tmp_path):
    replace_in(checkout / "eval" / "eval_mednli.py", "max_tokens = 512", "from shared import sys_prompt")
    with pytest.raises(ConfigError, match=r"eval_mednli.py: sys_prompt: imported, not defined in this file \(line \d+\)"):
        load_prompts(f"reference:{checkout}", tmp_path)


def test_a_directory_that_is_not_there_is_a_usage_error(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        load_prompts(f"reference:{tmp_path / 'absent'}", tmp_path)
    with pytest.raises(ConfigError, match="--prompts: expected 'medgate' or 'reference:DIR'"):
        load_prompts("clue", tmp_path)


# -- chats byte-identical to the reference's --------------------------------------------------------

def plain(chats):
    return [[dict(m) for m in chat] for chat in chats]


@pytest.mark.parametrize("name", FEWSHOT_TASKS)
def test_fewshot_chats_are_the_references_on_the_shipped_fixtures(checkout, tmp_path, name):
    source = load_prompts(f"reference:{checkout}", tmp_path)
    plan = plan_task(TASKS[name], FIXTURES, prompts=source)
    assert plain(plan.chats) == reference_chats(name, FIXTURES, TASKS[name].fewshot)
    # and they are not medgate's own
    assert plain(plan_task(TASKS[name], FIXTURES).chats) != plain(plan.chats)


def padded_fixtures(target):
    """The fixtures with whitespace around every prompt field and ';' in summaries: the reference
    uses values as read; medgate's own prompts strip them."""
    target.mkdir()
    pad = lambda text: f"  {text} \n"  # noqa: E731
    rows = [json.loads(line) for line in (FIXTURES / "mli_test_v1.jsonl").read_text().splitlines() if line.strip()]
    (target / "mli_test_v1.jsonl").write_text("\n".join(json.dumps({**r, "sentence1": pad(r["sentence1"])}) for r in rows) + "\n")
    book = load_workbook(FIXTURES / "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx")
    for row in list(book["QS"].iter_rows())[1:]:
        row[1].value, row[2].value = pad(row[1].value), pad(row[2].value)
    book.save(target / "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx")
    with (FIXTURES / "BioNLP2023-1A-Test.csv").open(newline="") as handle:
        table = list(csv.reader(handle))
    with (target / "BioNLP2023-1A-Test.csv").open("w", newline="") as handle:
        # the reference keeps a trailing ';' (and turns it into ', ')
        csv.writer(handle).writerows([table[0]] + [[row[0], *map(pad, row[1:4]), pad(row[4] + ";")] for row in table[1:]])
    for name, fields in (("MeDiSumQA.json", ("discharge_summary", "Answer")), ("MeDiSumCode.json", ("text",))):
        items = json.loads((FIXTURES / name).read_text())
        for item in items:
            for field in fields:
                item[field] = pad(item[field])
            for code in item.get("icd_codes", []):
                code["code"] = code["code"][:3] + "." + code["code"][3:] if len(code["code"]) > 3 else code["code"]
        (target / name).write_text(json.dumps(items))
    return target


@pytest.mark.parametrize("name", FEWSHOT_TASKS)
def test_fewshot_chats_use_the_values_as_read(checkout, tmp_path, name):
    data = padded_fixtures(tmp_path / "padded")
    source = load_prompts(f"reference:{checkout}", tmp_path)
    plan = plan_task(TASKS[name], data, prompts=source)
    expected = reference_chats(name, data, TASKS[name].fewshot)
    assert plain(plan.chats) == expected
    texts = json.dumps(expected)
    assert {"mednli": "  Patient", "meqsum": " \\n", "problem_summary": ",  \\n", "medisumqa": " \\n",
            "medisumcode": "."}[name] in texts  # the padding did reach the prompts


def test_mednli_fewshot_answers_are_raw_labels_in_reference_mode_and_upper_case_in_medgates(checkout, tmp_path):
    source = load_prompts(f"reference:{checkout}", tmp_path)
    ours, theirs = plan_task(TASKS["mednli"], FIXTURES), plan_task(TASKS["mednli"], FIXTURES, prompts=source)
    assert [m["content"] for m in theirs.chats[0] if m["role"] == "assistant"] == [s.reference for s in theirs.shots]
    assert [m["content"] for m in ours.chats[0] if m["role"] == "assistant"] == [s.reference.upper() for s in ours.shots]


def reversed_option_keys(target):
    """The LongHealth fixture with every question's keys answer_e .. answer_a in that order."""
    target.mkdir()
    bench = json.loads((FIXTURES / "benchmark_v5.json").read_text())
    for patient in bench.values():
        patient["questions"] = [{**{k: v for k, v in q.items() if not k.startswith("answer_")},
                                 **{f"answer_{l}": q[f"answer_{l}"] for l in "edcba"},
                                 "answer_location": q["answer_location"]} for q in patient["questions"]]
    (target / "benchmark_v5.json").write_text(json.dumps(bench))
    return target


@pytest.mark.parametrize("keys", ["as shipped", "reversed"])
def test_longhealth_chats_have_the_references_system_template_separator_and_options(checkout, tmp_path, keys):
    """Options in letter order even when the file's keys are not (the reference's prompt lists
    answer_a .. answer_e by label); the gold letter follows the file's key order."""
    data = FIXTURES if keys == "as shipped" else reversed_option_keys(tmp_path / "reversed")
    source = load_prompts(f"reference:{checkout}", tmp_path)
    plan = plan_task(TASKS["longhealth"], data, context=whitespace_context(32768), prompts=source)
    bench = json.loads((data / "benchmark_v5.json").read_text())
    questions = {f"{pid}-q{q['No']}": (pid, q) for pid, p in bench.items() for q in p["questions"]}
    assert len(plan.chats) == 15 * len(questions)
    for item, chat in zip(plan.items, plan.chats):
        pid, question = questions[item.id.rsplit("-task", 1)[0]]
        task = item.fields["task"]
        assert [m["role"] for m in chat] == ["system", "user"]
        assert chat[0]["content"] == TEXTS["longhealth"]["sys_prompt"]
        assert chat[1]["content"] == longhealth_user(TEXTS["longhealth"]["prompt_template"], item.fields["documents"],
                                                     question, with_f=task != 1)
        all_texts = [t for p in bench.values() for t in p["texts"].values()]
        assert all(doc in all_texts for doc in item.fields["documents"])  # 32k: nothing is cut
        if task == 1:
            assert sorted(item.fields["documents"]) == sorted(bench[pid]["texts"].values())
        gold = next(k.split("_")[1].upper() for k, v in question.items()
                    if k.startswith("answer") and k != "answer_location" and question["correct"] in v)
        assert item.reference == ("F" if task == 3 else gold)


def test_reference_mode_changes_the_prompt_version_and_provenance(checkout, tmp_path):
    source = load_prompts(f"reference:{checkout}", tmp_path)
    task = TASKS["meqsum"].with_prompts(source)
    assert task.prompt_version.startswith("meqsum-reference-") and task.prompt_version != TASKS["meqsum"].prompt_version
    assert TASKS["meqsum"].with_prompts(load_prompts("medgate", tmp_path)) is TASKS["meqsum"]
    other = write_checkout(tmp_path / "other")
    replace_in(other / "eval" / "eval_meqsum.py", "Short form:", "Shorter form:")
    assert TASKS["meqsum"].with_prompts(load_prompts(f"reference:{other}", tmp_path)).prompt_version != task.prompt_version
    provenance = source.provenance("meqsum")
    assert provenance["prompts"] == "reference" and provenance["reference_commit"] == COMMIT
    assert len(provenance["prompt_templates_sha256"]) == 64


def test_reference_mode_refuses_a_longhealth_item_without_a_gold_letter(checkout, tmp_path):
    bench = json.loads((FIXTURES / "benchmark_v5.json").read_text())
    bench["patient_02"]["questions"][1]["correct"] = "a text in no option"
    data = tmp_path / "data"
    data.mkdir()
    (data / "benchmark_v5.json").write_text(json.dumps(bench))
    source = load_prompts(f"reference:{checkout}", tmp_path)
    with pytest.raises(DataError, match=r"patient patient_02, question 1, field 'correct': no option contains"):
        plan_task(TASKS["longhealth"], data, context=whitespace_context(8192), prompts=source)


def test_reading_a_copied_checkout_needs_only_the_eval_folder(checkout, tmp_path):
    copy = tmp_path / "only_eval"
    shutil.copytree(checkout / "eval", copy)
    source = load_prompts(f"reference:{copy}", tmp_path)
    assert source.directory == copy and source.commit is None
    assert lh.reference_layout(source.templates["longhealth"]).separator == "\n\n" + "-" * 14 + "\n\n"
