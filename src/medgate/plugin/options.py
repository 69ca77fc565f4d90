"""medgate's command-line options, and the run configuration read from them (every problem a
usage error before anything loads)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from medgate.core.errors import ConfigError, MissingDataFile
from medgate.core.io import check_name, file_sha256
from medgate.core.paths import SOURCE_ROOT, generations_db
from medgate.core.types import GenParams, ScoringConfig
from medgate.judging.baselines import check_baseline, check_baseline_fits
from medgate.metrics.bertscore import check_encoder, resolve_encoder
from medgate.models.registry import Registry, load_registry
from medgate.models.spec import ModelSpec
from medgate.pipeline.cache import check_cache_file
from medgate.pipeline.model_run import RunSettings
from medgate.pipeline.plan import data_file
from medgate.tasks import TASKS, load_prompts
from medgate.tasks.reference_prompts import PromptSource


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
    group.addoption("--require-gate", dest="medgate_require_gate", action="store_true",
                    help="fail the run when a selected model is gated by nothing (no threshold, baseline or "
                         "reference for any selected metric); what a CI job should pass")


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
    against: Against | None = None
    require_gate: bool = False
    shard_timeout: float = 1800.0  # seconds without progress before a missing shard is an error


@dataclass(frozen=True)
class Against:
    """The reference of --against: a model generated in this run, or a model's stored baseline."""

    spec: ModelSpec
    baseline: str | None = None  # REF@NAME: per-item scores from this baseline, nothing generated

    @property
    def label(self) -> str:
        return f"{self.spec.name}@{self.baseline}" if self.baseline else self.spec.name


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
    """Raises ConfigError (the caller makes it a usage error) on the first problem: everything
    that can be checked before a model or an encoder loads is checked here."""
    registry = load_registry(models_file(config))
    prompt_spec, prompt_base = config.getoption("medgate_prompts"), config.invocation_params.dir
    if prompt_spec is None and registry.prompts is not None:  # DIR relative to models.toml
        prompt_spec, prompt_base = registry.prompts, registry.path.parent
    prompts = load_prompts(prompt_spec or "medgate", prompt_base)
    no_cache = config.getoption("medgate_no_cache")
    if config.getoption("medgate_rejudge") and no_cache:
        raise ConfigError("--rejudge reads the generation cache: it cannot be combined with --no-cache")
    data_dir, source = _data_dir(config)
    reports_opt = config.getoption("medgate_reports_dir")
    reports_dir = _writable_dir(Path(reports_opt).expanduser().resolve() if reports_opt else config.rootpath / "reports",
                                "--reports-dir")
    baselines_opt = config.getoption("medgate_baselines_dir")
    baselines_dir = Path(baselines_opt).expanduser().resolve() if baselines_opt else reports_dir / "baselines"
    limit = config.getoption("medgate_limit")
    against = _against(config, registry, baselines_dir, data_dir, limit, prompts)
    models = _models(config, registry, against)
    save_name, compare_name = config.getoption("medgate_save_baseline"), config.getoption("medgate_baseline")
    for name in (save_name, compare_name):
        if name is not None:
            check_name(name, "baseline name")
    if save_name and save_name == compare_name:
        raise ConfigError(f"--save-baseline {save_name} --baseline {compare_name}: saving would overwrite the baseline "
                          "this run is compared with; save under another name")
    if compare_name:
        check_baseline(baselines_dir, compare_name, list(models))
    if save_name:
        _writable_dir(baselines_dir, "--baselines-dir")
    scoring = ScoringConfig(config.getoption("medgate_bertscore_encoder"), config.getoption("medgate_bertscore_layers"))
    check_encoder(resolve_encoder(scoring.bertscore_encoder, scoring.bertscore_layers))
    cache_path = None if no_cache else generations_db()
    if cache_path is not None:
        check_cache_file(cache_path)
    settings = RunSettings(
        data_dir=data_dir, data_source=source, limit=limit, scoring=scoring, cache_path=cache_path,
        chunk_size=config.getoption("medgate_chunk_size"), rejudge=config.getoption("medgate_rejudge"),
        prompts=prompts,
    )
    return RunConfig(
        models=models, settings=settings, reports_dir=reports_dir, baselines_dir=baselines_dir,
        save_baseline=save_name, baseline=compare_name, attach_samples=config.getoption("medgate_attach_samples"),
        against=against, require_gate=config.getoption("medgate_require_gate"),
        shard_timeout=float(config.getoption("medgate_shard_timeout")),
    )


def _models(config: pytest.Config, registry: Registry, against: Against | None) -> dict[str, ModelSpec]:
    given = config.getoption("medgate_models")
    if any(not name.strip() for name in given):
        raise ConfigError("--model: an empty model name; give a name from models.toml, a path or a hub id")
    names = given or ([registry.default] if registry.default else [])
    if not names:
        raise ConfigError(f"{registry.path}: defines no models and no --model was given")
    models: dict[str, ModelSpec] = {}
    for name in names:
        spec = registry.resolve(name)
        if against is not None and not spec.registered and against.spec.registered:
            spec = registry.derive(name, against.spec)  # a checkpoint takes its reference's settings
        taken = models.get(spec.name)
        if taken is not None and taken.location != spec.location:
            raise ConfigError(f"--model {name}: its name {spec.name!r} is also that of {taken.location}; give one of them "
                              "an entry in models.toml")
        if against is not None and spec.name == against.spec.name and against.baseline is None:
            raise ConfigError(f"--against {against.label}: compares model {spec.name} with itself; give another "
                              f"model, or {spec.name}@BASELINE for its stored scores")
        models.setdefault(spec.name, spec)
    return models


def _against(config: pytest.Config, registry: Registry, baselines_dir: Path, data_dir: Path,
             limit: int | None, prompts: PromptSource) -> Against | None:
    given = config.getoption("medgate_against")
    if given is None:
        return None
    if not given.strip():
        raise ConfigError("--against: an empty reference; give a models.toml name, a path or a hub id")
    name, baseline = given, None
    if "@" in given and not Path(given).expanduser().exists():  # a path may hold "@"; a model name cannot
        name, _, baseline = given.rpartition("@")
        check_name(baseline, "--against baseline name")
    try:
        spec = registry.resolve(name)
    except ConfigError as exc:
        raise ConfigError(f"--against {given}: {exc}") from None
    if baseline is not None:
        check_baseline(baselines_dir, baseline, [spec.name])
        check_baseline_fits(baselines_dir, baseline, spec.name, _expected_provenance(data_dir, limit, prompts))
    return Against(spec, baseline)


def _expected_provenance(data_dir: Path, limit: int | None, prompts: PromptSource) -> dict[str, dict[str, object]]:
    """What a baseline of this run's data and prompts must have recorded, per task whose file is present."""
    out: dict[str, dict[str, object]] = {}
    for task in (t.with_prompts(prompts) for t in TASKS.values()):
        try:
            path = data_file(task, data_dir)
        except MissingDataFile:
            continue
        out[task.name] = {"dataset_hash": file_sha256(path), "prompt_version": task.prompt_version,
                          "decoding": GenParams(max_tokens=task.max_new_tokens).describe(), "limit": limit}
    return out


def _data_dir(config: pytest.Config) -> tuple[Path, str]:
    """The data folder and whether it is the shipped synthetic data. A given folder that holds
    none of the tasks' files is a usage error (a typo in a CI job's path must not pass green)."""
    given = config.getoption("medgate_data_dir")
    if given is None:
        return fixtures_dir(config), "synthetic"
    if not given.strip():  # e.g. --data-dir="$DATA" with DATA unset: never fall back to the shipped data
        raise ConfigError("--data-dir: an empty path; give the folder of the dataset files")
    data_dir = Path(given).expanduser().resolve()
    if not data_dir.is_dir():
        raise ConfigError(f"--data-dir {data_dir}: not a directory")
    names = [name for task in TASKS.values() for name in (task.filename, *task.alt_filenames)]
    if not any((data_dir / name).exists() for name in names):
        below = sorted({p.parent for name in names for p in data_dir.glob(f"*/{name}")})
        hint = f"; they are in {', '.join(map(str, below))}: did you mean --data-dir {below[0]}?" if below else ""
        raise ConfigError(f"--data-dir {data_dir}: holds none of the task files ({', '.join(names)}){hint}")
    # The shipped fixtures named explicitly are still synthetic; anything else may be credentialed.
    return data_dir, "synthetic" if data_dir == fixtures_dir(config).resolve() else "user"


def _writable_dir(path: Path, option: str) -> Path:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: a file is in the way; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot create the folder ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{option} {path}: not writable")
    return path
