"""The run configuration read from medgate's options and models.toml (every problem a usage
error before anything loads), and the checks that need the collected tasks (after collection)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from medgate.core.errors import ConfigError, MedgateError
from medgate.core.io import check_name, file_sha256
from medgate.core.paths import PACKAGE_ROOT, SOURCE_ROOT, generations_db
from medgate.core.types import GenParams, ScoringConfig
from medgate.judging.baselines import check_baseline, check_baseline_fits
from medgate.judging.criteria import Criteria, check_criteria
from medgate.metrics.bertscore import check_encoder, resolve_encoder
from medgate.models.registry import Registry, load_registry
from medgate.models.spec import ModelSpec
from medgate.pipeline.cache import check_cache_file
from medgate.pipeline.model_run import RunSettings
from medgate.pipeline.plan import data_file
from medgate.plugin.flags import INI_MODELS_FILE
from medgate.tasks import load_prompts
from medgate.tasks.base import TaskSpec
from medgate.tasks.catalogue import Catalogue
from medgate.tasks.reference_prompts import PromptSource

DEFAULT_REGISTRY = PACKAGE_ROOT / "data" / "models.toml"  # the embedded default model, for a project without one


@dataclass(frozen=True)
class RunConfig:
    """What the options and models.toml say about this run."""

    models: dict[str, ModelSpec]  # the selected models, by name
    settings: RunSettings
    registry: Registry
    reports_dir: Path
    baselines_dir: Path
    save_baseline: str | None
    baseline: str | None
    attach_samples: bool
    against: Against | None = None
    require_gate: bool = False
    shard_timeout: float = 1800.0  # seconds without progress before a missing shard is an error
    data_dir_given: bool = False  # --data-dir named a folder: it must hold a file of a collected task
    primary: str | None = None  # --primary TASK.METRIC: the series report's pick (checked after collection)
    signing_key: Path | None = None  # MEDGATE_SIGNING_KEY: the release record's Ed25519 key (checked at start)


@dataclass(frozen=True)
class Against:
    """The reference of --against: a model generated in this run, or a model's stored baseline.
    The one owner of what the reference is; every plugin module asks it."""

    spec: ModelSpec
    baseline: str | None = None  # REF@NAME: per-item scores from this baseline, nothing generated

    @property
    def label(self) -> str:
        return f"{self.spec.name}@{self.baseline}" if self.baseline else self.spec.name

    @property
    def generated(self) -> bool:
        """Whether this run generates the reference (not read from a baseline)."""
        return self.baseline is None

    @property
    def description(self) -> str:
        """How reports name the reference of a comparison."""
        return f"model {self.label}"

    def test_id(self, model: str) -> str:
        return f"{model}-vs-{self.label}"

    def is_model(self, name: str) -> bool:
        """Is ``name`` the reference model that this run generates?"""
        return self.generated and self.spec.name == name


def models_file(config: pytest.Config) -> Path:
    """--models-file, else the ini's medgate_models_file (relative to the ini file), else
    models.toml in the rootdir, else the packaged default (the embedded model only)."""
    given = config.getoption("medgate_models_file")
    if given:
        return Path(given).expanduser().resolve()
    ini = config.getini(INI_MODELS_FILE)
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return (base / str(ini)).expanduser().resolve()
    local = config.rootpath / "models.toml"
    return local if local.exists() else DEFAULT_REGISTRY


def fixtures_dir(config: pytest.Config) -> Path | None:
    """The default data folder: fixtures/ in the rootdir, else this checkout's shipped synthetic
    data (an editable install); an installed medgate in another project has none (its tasks name
    their files by path, or --data-dir gives them)."""
    for candidate in (config.rootpath / "fixtures", SOURCE_ROOT / "fixtures"):
        if candidate.is_dir():
            return candidate
    return None


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
    data_dir = _data_dir(config)
    reports_opt = config.getoption("medgate_reports_dir")
    reports_dir = _writable_dir(Path(reports_opt).expanduser().resolve() if reports_opt else config.rootpath / "reports",
                                "--reports-dir")
    baselines_opt = config.getoption("medgate_baselines_dir")
    baselines_dir = Path(baselines_opt).expanduser().resolve() if baselines_opt else reports_dir / "baselines"
    limit = config.getoption("medgate_limit")
    against = _against(config, registry, baselines_dir)
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
        data_dir=data_dir, limit=limit, scoring=scoring, cache_path=cache_path,
        chunk_size=config.getoption("medgate_chunk_size"), rejudge=config.getoption("medgate_rejudge"),
        prompts=prompts,
    )
    return RunConfig(
        models=models, settings=settings, registry=registry, data_dir_given=config.getoption("medgate_data_dir") is not None, reports_dir=reports_dir, baselines_dir=baselines_dir,
        save_baseline=save_name, baseline=compare_name, attach_samples=config.getoption("medgate_attach_samples"),
        against=against, require_gate=config.getoption("medgate_require_gate"),
        shard_timeout=float(config.getoption("medgate_shard_timeout")), signing_key=_signing_key(),
        primary=config.getoption("medgate_primary"),
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


def _against(config: pytest.Config, registry: Registry, baselines_dir: Path) -> Against | None:
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
        check_baseline(baselines_dir, baseline, [spec.name])  # that it fits the data: after collection
    return Against(spec, baseline)


def _expected_provenance(tasks: list[TaskSpec], data_dir: Path | None, limit: int | None,
                         prompts: PromptSource) -> dict[str, dict[str, object]]:
    """What a baseline of this run's data and prompts must have recorded, per task whose file is present."""
    out: dict[str, dict[str, object]] = {}
    for task in (t.with_prompts(prompts) for t in tasks):
        try:
            path = data_file(task, data_dir)
        except MedgateError:
            continue
        out[task.name] = {"dataset_hash": file_sha256(path), "prompt_version": task.prompt_version,
                          "decoding": GenParams(max_tokens=task.max_new_tokens).describe(), "limit": limit}
    return out


def _data_dir(config: pytest.Config) -> Path | None:
    """The data folder: --data-dir (that it holds a file of a collected task is checked after
    collection), else the default of fixtures_dir."""
    given = config.getoption("medgate_data_dir")
    if given is None:
        return fixtures_dir(config)
    if not given.strip():  # e.g. --data-dir="$DATA" with DATA unset: never fall back to the shipped data
        raise ConfigError("--data-dir: an empty path; give the folder of the dataset files")
    data_dir = Path(given).expanduser().resolve()
    if not data_dir.is_dir():
        raise ConfigError(f"--data-dir {data_dir}: not a directory")
    return data_dir


def check_collected(run: RunConfig, catalogue: Catalogue, tasks: list[TaskSpec], *,
                    check_names: bool = True) -> dict[str, Criteria]:
    """What only collection can check (every task is known now): each model's criteria against
    the catalogue, a --data-dir that holds no file of the collected tasks, a REF@BASELINE that was
    measured on other data or prompts. Returns the criteria of every model of the run. (A data
    folder must hold a file of some task of the catalogue: a typo in a CI job's path must not pass
    green, and a team's folder may hold its own task's file only.)"""
    metrics = catalogue.metrics()
    criteria: dict[str, Criteria] = {}
    specs = [*run.models.values(), *([run.against.spec] if run.against else [])]
    for spec in specs:
        key, raw = run.registry.criteria_of(spec)
        criteria[spec.name] = check_criteria(raw, key, run.registry.path, metrics if check_names else None)  # type: ignore[arg-type]
    data_dir = run.settings.data_dir
    if run.data_dir_given and tasks and data_dir is not None:
        names = [name for task in catalogue.tasks.values() for name in (task.filename, *task.alt_filenames)]
        if not any((data_dir / name).exists() for name in names):
            below = sorted({p.parent for name in names for p in data_dir.glob(f"*/{name}")})
            hint = f"; they are in {', '.join(map(str, below))}: did you mean --data-dir {below[0]}?" if below else ""
            raise ConfigError(f"--data-dir {data_dir}: holds none of the task files ({', '.join(names)}){hint}")
    if run.primary is not None:
        task, _, metric = run.primary.partition(".")
        if task not in catalogue or metric not in catalogue[task].metrics:
            known = ", ".join(f"{t}.{m}" for t in catalogue for m in catalogue[t].metrics)
            raise ConfigError(f"--primary {run.primary}: no such task and metric (known: {known})")
    against = run.against
    if against is not None and against.baseline is not None:
        expected = _expected_provenance(tasks, data_dir, run.settings.limit, run.settings.prompts)
        check_baseline_fits(run.baselines_dir, against.baseline, against.spec.name, expected)
    return criteria


def _signing_key() -> Path | None:
    """The release record's key, loaded now: a bad key is a usage error before hours of generation."""
    from medgate.reporting.attestation import signing_key_path
    from medgate.reporting.dsse import load_private_key

    path = signing_key_path()
    if path is not None:
        try:
            load_private_key(path)
        except ConfigError as exc:
            raise ConfigError(f"MEDGATE_SIGNING_KEY: {exc}") from None
    return path


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
