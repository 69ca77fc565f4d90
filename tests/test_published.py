"""`medgate table --published`: each model's stored values beside the published CLUE figures."""

from __future__ import annotations

import pytest

from medgate.cli import main
from medgate.core.outcome import Outcome
from medgate.models.registry import load_registry
from medgate.reporting.published import FIGURES, SOURCE, reproduction_rows, write_reproduction
from medgate.reporting.table import store_run
from tests.conftest import REPO, write_models

REFERENCE = {"prompts": "reference", "reference_commit": "0123456789abcdef0123", "data_source": "user"}


def outcome(task, metric, value, low, high, **provenance):
    return Outcome(model="bm", task=task, metric=metric, value=value, low=low, high=high, status="pass", message="",
                   provenance=provenance)


def test_values_sit_beside_the_published_figures_with_difference_and_interval(tmp_path):
    store_run(tmp_path, [
        # BioMistral-7B published 62.32 (MedNLI) and 24.58 (MeQSum ROUGE-L)
        outcome("mednli", "accuracy", 0.60, 0.55, 0.65, **REFERENCE),
        outcome("meqsum", "rougeL", 0.30, 0.28, 0.32, **REFERENCE),
        outcome("meqsum", "bertscore_f1", 0.70, 0.69, 0.71, notes={"bertscore_encoder": "all-MiniLM-L6-v2 (x) (layer 6)"},
                data_source="synthetic", prompts="medgate"),
    ])
    rows = {(r.task, r.metric): r.cells() for r in reproduction_rows(tmp_path, {"bm": "BioMistral-7B"})}
    assert len(rows) == len(FIGURES["BioMistral-7B"])
    assert rows[("mednli", "accuracy")] == ["bm", "BioMistral-7B", "mednli", "accuracy", "60.00", "55.00-65.00", "62.32",
                                            "-2.32", "yes", "reference @ 0123456789ab", "-"]
    assert rows[("meqsum", "rougeL")][7:9] == ["+5.42", "no"]  # 24.58 lies below 28.00-32.00
    assert rows[("meqsum", "bertscore_f1")][9:] == [
        "medgate's own",
        "synthetic data, not user data; medgate's own prompts, not the reference's; "
        "BERTScore encoder all-MiniLM-L6-v2 (x) at layer 6, not recognisably SciBERT"]
    assert rows[("longhealth", "accuracy_task1")][4:] == ["-", "-", "28.55", "-", "-", "-", "not run"]
    md, csv_path = write_reproduction(tmp_path, reproduction_rows(tmp_path, {"bm": "BioMistral-7B"}))
    text = md.read_text()
    assert SOURCE in text and "early prompts (April 2024)" in text
    assert "| bm | BioMistral-7B | mednli | accuracy | 60.00 | 55.00-65.00 | 62.32 | -2.32 | yes |" in text
    assert csv_path.read_text().count("\n") == 1 + len(FIGURES["BioMistral-7B"])


def test_a_subset_is_a_caveat_and_a_later_synthetic_run_does_not_hide_the_real_one(tmp_path):
    store_run(tmp_path, [outcome("mednli", "accuracy", 0.60, 0.55, 0.65, **REFERENCE),
                         outcome("meqsum", "rougeL", 0.20, 0.18, 0.22, **REFERENCE, limit=20)])
    store_run(tmp_path, [outcome("mednli", "accuracy", 0.30, 0.20, 0.40, data_source="synthetic", prompts="medgate")])
    rows = {(r.task, r.metric): r.cells() for r in reproduction_rows(tmp_path, {"bm": "BioMistral-7B"})}
    assert rows[("mednli", "accuracy")][4] == "60.00"  # the full real run, not the newer synthetic 30.00
    assert rows[("mednli", "accuracy")][10] == "-"
    assert rows[("meqsum", "rougeL")][10] == "--limit 20, not all items"
    # among equally comparable values the newer wins
    store_run(tmp_path, [outcome("mednli", "accuracy", 0.61, 0.56, 0.66, **REFERENCE)])
    assert [r.cells()[4] for r in reproduction_rows(tmp_path, {"bm": "BioMistral-7B"}) if r.task == "mednli"] == ["61.00"]


def test_cli_maps_models_through_models_toml_and_refuses_unknown_names(tmp_path, capsys):
    store_run(tmp_path / "reports", [outcome("mednli", "accuracy", 0.60, 0.55, 0.65, **REFERENCE)])
    toml = write_models(tmp_path / "models.toml", '[models.bm]\nhub = "x/y"\npublished = "BioMistral-7B"\n')
    assert main(["table", "--published", "--reports-dir", str(tmp_path / "reports"), "--models-file", str(toml)]) == 0
    assert "| bm | BioMistral-7B | mednli | accuracy | 60.00 |" in (tmp_path / "reports" / "reproduction.md").read_text()
    assert str(tmp_path / "reports" / "reproduction.md") in capsys.readouterr().out
    bad = write_models(tmp_path / "bad.toml", '[models.bm]\nhub = "x/y"\npublished = "BioMistral"\n')
    with pytest.raises(SystemExit, match=r"bad.toml: models.bm.published: 'BioMistral' has no published figures \(known: "):
        main(["table", "--published", "--reports-dir", str(tmp_path / "reports"), "--models-file", str(bad)])


def test_shipped_models_map_to_published_names():
    registry = load_registry(REPO / "models.toml")
    mapped = {name: spec.published for name, spec in registry.models.items() if spec.published}
    assert mapped == {"meditron-7b": "meditron-7b", "meditron-70b": "meditron-70b", "BioMistral-7B": "BioMistral-7B",
                      "Mistral-7B-Instruct": "Mistral-7B-Instruct-v0.1", "Mixtral-8x7B-Instruct": "Mixtral-8x7B-Instruct"}
    assert registry.models["Mistral-7B-Instruct"].location.endswith("v0.1")
