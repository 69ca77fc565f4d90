"""medgate's command-line options, and the run configuration read from them (every problem a
usage error before anything loads)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from medgate.core.errors import ConfigError
from medgate.core.io import check_name
from medgate.core.paths import SOURCE_ROOT, generations_db
from medgate.core.types import ScoringConfig
from medgate.models.registry import load_registry
from medgate.models.spec import ModelSpec
from medgate.pipeline.model_run import RunSettings


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("medgate", "medgate: release gate for clinical language models")
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


@dataclass(frozen=True)
class RunConfig:
    """What the options and models.toml say about this run."""

    models: dict[str, ModelSpec]  # the selected models, by name
    settings: RunSettings
    reports_dir: Path
    baselines_dir: Path
    save_baseline: str | None
    baseline: str | None
    attach_samples: bool
    shard_timeout: float = 1800.0  # seconds without progress before a missing shard is an error


def models_file(config: pytest.Config) -> Path:
    given = config.getoption("medgate_models_file")
    if given:
        return Path(given).expanduser().resolve()
    local = config.rootpath / "models.toml"
    return local if local.exists() else SOURCE_ROOT / "models.toml"


def fixtures_dir(config: pytest.Config) -> Path:
    local = config.rootpath / "fixtures"
    return local if local.is_dir() else SOURCE_ROOT / "fixtures"


def read_run_config(config: pytest.Config) -> RunConfig:
    """Raises ConfigError (the caller makes it a usage error) on the first problem."""
    registry = load_registry(models_file(config))
    names = config.getoption("medgate_models") or ([registry.default] if registry.default else [])
    models: dict[str, ModelSpec] = {}
    for name in names:
        spec = registry.resolve(name)
        models.setdefault(spec.name, spec)
    if config.getoption("medgate_rejudge") and config.getoption("medgate_no_cache"):
        raise ConfigError("--rejudge reads the generation cache: it cannot be combined with --no-cache")
    data_dir_opt = config.getoption("medgate_data_dir")
    if data_dir_opt:
        data_dir = Path(data_dir_opt).expanduser().resolve()
        if not data_dir.is_dir():
            raise ConfigError(f"--data-dir {data_dir}: not a directory")
        # The shipped fixtures named explicitly are still synthetic; anything else may be credentialed.
        source = "synthetic" if data_dir == fixtures_dir(config).resolve() else "user"
    else:
        data_dir, source = fixtures_dir(config), "synthetic"
    reports_opt = config.getoption("medgate_reports_dir")
    reports_dir = Path(reports_opt).resolve() if reports_opt else config.rootpath / "reports"
    baselines_opt = config.getoption("medgate_baselines_dir")
    save_name, compare_name = config.getoption("medgate_save_baseline"), config.getoption("medgate_baseline")
    for name in (save_name, compare_name):
        if name:
            check_name(name, "baseline name")
    scoring = ScoringConfig(config.getoption("medgate_bertscore_encoder"), config.getoption("medgate_bertscore_layers"))
    settings = RunSettings(
        data_dir=data_dir, data_source=source, limit=config.getoption("medgate_limit"), scoring=scoring,
        cache_path=None if config.getoption("medgate_no_cache") else generations_db(),
        chunk_size=config.getoption("medgate_chunk_size"), rejudge=config.getoption("medgate_rejudge"),
    )
    return RunConfig(
        models=models, settings=settings, reports_dir=reports_dir,
        baselines_dir=Path(baselines_opt).resolve() if baselines_opt else reports_dir / "baselines",
        save_baseline=save_name, baseline=compare_name, attach_samples=config.getoption("medgate_attach_samples"),
        shard_timeout=float(config.getoption("medgate_shard_timeout")),
    )
