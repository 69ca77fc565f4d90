"""medgate's command-line options and ini keys, and whether a session asked for medgate at all.

Light on purpose (argparse and pytest only): the plugin module imports this in every pytest
session of an environment where medgate is installed, and a session that asks nothing of medgate
must not pay for it (README, "Installed in another project")."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

STATE: Any = pytest.StashKey[Any]()  # the run's RunState, once medgate is active in the session
MODEL_FIXTURE = "medgate_model"  # the session fixture parametrised with the run's models
OUTCOME_PROPERTY = "medgate"  # the user_properties key that carries an Outcome (xdist ships it back)
USAGE_NODE = "medgate::usage"  # the collect report that carries a usage error from an xdist worker
INI_MODELS_FILE = "medgate_models_file"
DEFAULTS: dict[str, Any] = {}  # option dest -> its default, filled by add_options


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_options(parser: pytest.Parser) -> None:
    medgate = parser.getgroup("medgate", "medgate: release gate for clinical language models")

    class _Group:  # records each option's default, so that asked_for() sees what the user changed
        @staticmethod
        def addoption(*names: str, **attrs: Any) -> None:
            DEFAULTS[attrs["dest"]] = attrs.get("default", False if attrs.get("action") == "store_true" else None)
            medgate.addoption(*names, **attrs)

    group = _Group()
    group.addoption("--model", action="append", dest="medgate_models", default=[], metavar="NAME",
                    help="model to evaluate: a name from models.toml, a local path or a hub id (repeatable; "
                         "default: the file's 'default')")
    group.addoption("--models-file", dest="medgate_models_file", default=None, metavar="PATH",
                    help="models registry (default: models.toml in the rootdir, else the repository's)")
    group.addoption("--data-dir", dest="medgate_data_dir", default=None, metavar="DIR",
                    help="folder with the real dataset files under their original names "
                         "(default: the shipped synthetic fixtures)")
    group.addoption("--limit", dest="medgate_limit", type=_positive_int, default=None, metavar="N",
                    help="score at most N items per task (after the few-shot examples)")
    group.addoption("--bertscore-encoder", dest="medgate_bertscore_encoder", default="minilm", metavar="NAME",
                    help="BERTScore encoder: 'minilm' (packaged, offline; default), "
                         "'allenai/scibert_scivocab_uncased' (the paper's, layer 8) or a local model folder")
    group.addoption("--bertscore-layers", dest="medgate_bertscore_layers", type=_positive_int, default=None,
                    metavar="N", help="encoder layer for BERTScore (default: the paper's 8 for SciBERT, else the last)")
    group.addoption("--prompts", dest="medgate_prompts", default=None, metavar="SOURCE",
                    help="'medgate' (its own prompts; default) or 'reference:DIR': the prompts of the reference "
                         "evaluation code in DIR (a checkout of the CLUE repository or its eval/ folder), read "
                         "without running it; models.toml's top-level 'prompts' sets it for every run")
    group.addoption("--no-cache", dest="medgate_no_cache", action="store_true",
                    help="do not read or write the generation cache")
    group.addoption("--chunk-size", dest="medgate_chunk_size", type=_positive_int, default=1024, metavar="N",
                    help="prompts per engine call; each finished chunk is cached (default 1024)")
    group.addoption("--shard-timeout", dest="medgate_shard_timeout", type=_positive_int, default=1800,
                    metavar="SECONDS", help="under xdist with more workers than models: how long the worker that "
                                            "scores a model waits for a shard of another worker that shows no "
                                            "progress (default 1800)")
    group.addoption("--rejudge", dest="medgate_rejudge", action="store_true",
                    help="recompute every verdict from stored generations; never load a model")
    group.addoption("--save-baseline", dest="medgate_save_baseline", default=None, metavar="NAME",
                    help="store this run's per-item scores and provenance as baseline NAME")
    group.addoption("--baseline", dest="medgate_baseline", default=None, metavar="NAME",
                    help="compare this run item by item with baseline NAME; a significant drop beyond the "
                         "tolerance fails the metric")
    group.addoption("--baselines-dir", dest="medgate_baselines_dir", default=None, metavar="DIR",
                    help="where baselines live (default: <reports-dir>/baselines)")
    group.addoption("--attach-samples", dest="medgate_attach_samples", action="store_true",
                    help="attach per-item prompts and outputs to the report for user data too (they may hold "
                         "credentialed patient text; shipped synthetic data is always attached)")
    group.addoption("--reports-dir", dest="medgate_reports_dir", default=None, metavar="DIR",
                    help="where reports go (default: reports/ in the rootdir)")
    group.addoption("--against", dest="medgate_against", default=None, metavar="REF",
                    help="compare every selected model item by item with REF (a models.toml name, a path or a hub "
                         "id; REF@NAME: REF's per-item scores from baseline NAME): non-inferiority verdicts")
    group.addoption("--primary", dest="medgate_primary", default=None, metavar="TASK.METRIC",
                    help="with several --model and --against: the metric that picks the best checkpoint of the "
                         "series report (reports/comparisons/series-vs-REF.md)")
    group.addoption("--require-gate", dest="medgate_require_gate", action="store_true",
                    help="fail the run when a selected model is gated by nothing (no threshold, baseline or "
                         "reference for any selected metric); what a CI job should pass")


def add_ini(parser: pytest.Parser) -> None:
    parser.addini(INI_MODELS_FILE, "medgate: the models registry of this project (relative to the ini file); setting it "
                  "also turns medgate on for every session of the project", default=None)


def asked_for(config: pytest.Config) -> bool:
    """A medgate option on the command line (or in addopts), or the project's ini names a registry."""
    if any(config.getoption(dest) != default for dest, default in DEFAULTS.items()):
        return True
    return bool(config.getini(INI_MODELS_FILE))
