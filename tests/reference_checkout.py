"""A fake checkout of the reference evaluation code, for the tests of ``--prompts reference:DIR``.

Same file names and constant names as the public CLUE repository's ``eval/`` folder, but every
text here is invented for medgate's tests: nothing of the reference's prompts is in this
repository. The scripts mimic what such scripts look like around their constants (imports of
packages that are not installed, functions, a main block) and write a marker file when run, so a
test can tell that reading them never executed them. ``TEXTS`` holds what each constant evaluates
to; ``reference_chats`` rebuilds the chats the way PROTOCOL.md says the reference builds them.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

COMMIT = "0123456789abcdef0123456789abcdef01234567"
MARKER = "EXECUTED"  # a script that runs writes this file next to itself

TEXTS: dict[str, dict[str, str]] = {
    "mednli": {
        "sys_prompt": "Test-only system text for inference. Labels: ENTAILMENT, NEUTRAL, CONTRADICTION. {braces stay}",
        "user_prompt_template": "First: {sentence1}\nSecond: {sentence2}\nRelation?",
        "assistant_response_template": "{gold_label}",
    },
    "meqsum": {
        "sys_prompt": "Test-only system text: shorten the question.",
        "user_prompt_template": "<<Q>>\n{CHQ}\n<</Q>>\nShort form:",
        "assistant_response_template": "{Summary}",
    },
    "problem_summary": {
        "sys_prompt": "Test-only system text: problems only.",
        "user_prompt_template": "S and A:\n{Subjectives}\n\n{Assessment}\n--\nProblems?",
        "assistant_response_template": "{Summary}",
    },
    "medisumqa": {
        "sys_prompt": "Test-only system text: answer from the letter.",
        "user_prompt_template": "## Letter\n{discharge_summary}\n## Question\n{Question}",
        "assistant_response_template": "{Answer}",
    },
    "medisumcode": {
        "sys_prompt": "Test-only system text: codes please.",
        "user_prompt_template": "[[LETTER]]\n{text}\n[[/LETTER]] Codes?",
        "assistant_response_template": "Test codes -> {codes}",
    },
    "longhealth": {
        "sys_prompt": "Test-only system text for long documents. Start with: The correct answer is",
        "prompt_template": "DOCS BEGIN\n{documents}\nDOCS END\n\nQ: {question_text}\n{options}\nYour answer:",
    },
}

FILES = {"mednli": "eval_mednli.py", "meqsum": "eval_meqsum.py", "problem_summary": "eval_ProblemSummary.py",
         "medisumqa": "eval_MeDiSumQA.py", "medisumcode": "eval_MeDiSumCode.py", "longhealth": "eval_LongHealth.py"}

_PRELUDE = '''\
import json
import os
import random

from vllm import LLM, SamplingParams  # not installed here: importing this file would fail
from utils import build_messages

open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "{marker}"), "w").close()
'''

_MAIN = '''

def evaluate(path):
    items = json.load(open(path))
    random.seed(1)
    random.shuffle(items)
    return items


if __name__ == "__main__":
    evaluate("data.json")
'''


def _literal(text: str) -> str:
    return repr(text)


def _script(task: str) -> str:
    """The constants of one task in the forms real scripts use: literals, implicit concatenation
    in parentheses, triple quotes, a name and ``+``."""
    texts = TEXTS[task]
    lines = [_PRELUDE.format(marker=MARKER)]
    system = texts["sys_prompt"]
    half = len(system) // 2
    lines.append(f"sys_prompt = (\n    {_literal(system[:half])}\n    {_literal(system[half:])}\n)\n")
    if task == "longhealth":
        lines.append(f"prompt_template = {_literal(texts['prompt_template'])}\n")
        lines.append("max_new_tokens = 50\n")
    else:
        user = texts["user_prompt_template"]
        lines.append(f'user_prompt_template = """{user}"""\n' if "\"" not in user and "\\" not in user
                     else f"user_prompt_template = {_literal(user)}\n")
        answer = texts["assistant_response_template"]
        if task == "medisumcode":
            start = answer[: answer.index("{codes}")]
            lines.append(f"assistant_response_start = {_literal(start)}\n")
            lines.append('assistant_response_template = assistant_response_start + "{codes}"\n')
        else:
            lines.append(f"assistant_response_template = {_literal(answer)}\n")
        lines.append('ground_truth_key = "answer"\nmax_tokens = 512\n')
    return "".join(lines) + _MAIN


def write_checkout(root: Path, *, git: str = "loose") -> Path:
    """The fake repository at ``root`` with its scripts under ``eval/``. ``git``: "loose" (HEAD ->
    refs/heads/main), "packed" (the ref only in packed-refs), "detached" or "none"."""
    folder = root / "eval"
    folder.mkdir(parents=True, exist_ok=True)
    for task, name in FILES.items():
        (folder / name).write_text(_script(task), encoding="utf-8")
    (folder / "utils.py").write_text("def build_messages(*args):\n    raise SystemExit('test stub')\n")
    if git != "none":
        dot_git = root / ".git"
        (dot_git / "refs" / "heads").mkdir(parents=True, exist_ok=True)
        if git == "detached":
            (dot_git / "HEAD").write_text(COMMIT + "\n")
        else:
            (dot_git / "HEAD").write_text("ref: refs/heads/main\n")
            if git == "loose":
                (dot_git / "refs" / "heads" / "main").write_text(COMMIT + "\n")
            else:
                (dot_git / "packed-refs").write_text(f"# pack-refs with: peeled fully-peeled sorted\n{COMMIT} refs/heads/main\n")
    return root


# -- the reference's chat assembly, rebuilt from PROTOCOL.md for comparison ----------------------

def _raw_items(task: str, data_dir: Path) -> list[dict[str, Any]]:
    """The items as the reference reads them: rows as dicts, values as stored."""
    if task == "mednli":
        lines = (data_dir / "mli_test_v1.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    if task == "meqsum":
        sheet = load_workbook(data_dir / "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx", read_only=True)["QS"]
        rows = list(sheet.iter_rows(values_only=True))
        return [dict(zip(rows[0], row)) for row in rows[1:] if any(v is not None for v in row)]
    if task == "problem_summary":
        with (data_dir / "BioNLP2023-1A-Test.csv").open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    return json.loads((data_dir / {"medisumqa": "MeDiSumQA.json", "medisumcode": "MeDiSumCode.json"}[task])
                      .read_text(encoding="utf-8"))


def _values(task: str, item: dict[str, Any]) -> dict[str, Any]:
    if task == "problem_summary":
        return {**item, "Summary": item["Summary"].replace(";", ", ")}
    if task == "medisumcode":
        return {**item, "codes": ", ".join(code["code"] for code in item["icd_codes"])}
    return item


def reference_chats(task: str, data_dir: Path, fewshot: int) -> list[list[dict[str, str]]]:
    """Every item's chat as the reference builds it: ``random.seed(1); random.shuffle(items)``,
    the first ``fewshot`` items as examples, templates filled with ``str.format(**item)``."""
    texts = TEXTS[task]
    items = _raw_items(task, data_dir)
    random.seed(1)
    random.shuffle(items)
    shots, rest = items[:fewshot], items[fewshot:]
    chats = []
    for item in rest:
        chat = [{"role": "system", "content": texts["sys_prompt"]}]
        for shot in shots:
            chat.append({"role": "user", "content": texts["user_prompt_template"].format(**_values(task, shot))})
            chat.append({"role": "assistant", "content": texts["assistant_response_template"].format(**_values(task, shot))})
        chat.append({"role": "user", "content": texts["user_prompt_template"].format(**_values(task, item))})
        chats.append(chat)
    return chats


def longhealth_user(template: str, documents: list[str], question: dict[str, Any], with_f: bool) -> str:
    """The reference's LongHealth user message (PROTOCOL.md): documents joined by a line of 14
    hyphens between blank lines, options as ``A: text`` lines for the letters a to e in that
    order, whatever the file's key order (the gold rule alone walks the file's key order)."""
    options = [f"{letter.upper()}: {question[f'answer_{letter}']}" for letter in "abcde"]
    if with_f:
        options.append("F: Question cannot be answered with provided documents")
    separator = "\n\n" + "-" * 14 + "\n\n"
    return template.format(documents=separator.join(documents), question_text=question["question"],
                           options="\n".join(options))
