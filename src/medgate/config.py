"""models.toml: the registry of named models, their engine settings and their thresholds.

The file is parsed with ``tomllib`` (never executed) and validated as a whole on load; every
problem is a :class:`ConfigError` naming the file and the dotted key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from medgate.errors import ConfigError
from medgate.tasks import TASKS

BACKENDS = ("vllm", "openai", "fake")
_ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SOURCES = ("embedded", "path", "hub")
EMBEDDED_MODELS = ("smollm2",)


@dataclass(frozen=True)
class ModelSpec:
    """One model as the suite runs it."""

    name: str
    source: str  # "embedded", "path" or "hub"
    location: str  # embedded name, filesystem path or hub id
    revision: str | None = None
    backend: str = "vllm"
    chat_template: str | None = None  # resolved path to a Jinja file
    trust_remote_code: bool = False
    dtype: str = "auto"
    max_model_len: int = 4096
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    distributed_executor_backend: str | None = None  # "mp" or "ray" (multi-node), vLLM's choice if unset
    gpu_memory_utilization: float = 0.9
    enforce_eager: bool = False
    seed: int = 0
    cpu_kv_cache_gib: int = 2
    fake_reply: str = ""
    base_url_env: str = "MEDGATE_OPENAI_BASE_URL"  # backend openai: variables holding URL and key
    api_key_env: str = "MEDGATE_OPENAI_API_KEY"
    served_model: str | None = None  # the name the server knows; default: the hub id or path
    concurrency: int = 8
    request_timeout: float = 300.0
    max_retries: int = 3
    gate_on: str = "point"  # "point": the value must clear the threshold; "interval": its 95% bound
    tolerance: float = 0.0  # regression tolerance for every metric, unless ``tolerances`` says otherwise
    thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    tolerances: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    expected_failures: Mapping[str, str] = field(default_factory=dict)
    registered: bool = True

    def threshold(self, task: str, metric: str) -> float | None:
        return self.thresholds.get(task, {}).get(metric)

    def tolerance_for(self, task: str, metric: str) -> float:
        return self.tolerances.get(task, {}).get(metric, self.tolerance)

    @property
    def gpus_per_engine(self) -> int:
        """GPUs one engine needs on this node; a Ray cluster places them itself (none pinned here)."""
        if self.backend != "vllm" or self.distributed_executor_backend == "ray":
            return 0
        return self.tensor_parallel_size * self.pipeline_parallel_size


# key -> (python types, check, description); the check returns True when the value is allowed.
_FIELDS: dict[str, tuple[tuple[type, ...], Any, str]] = {
    "embedded": ((str,), lambda v: v in EMBEDDED_MODELS, f"one of {', '.join(EMBEDDED_MODELS)}"),
    "path": ((str,), lambda v: bool(v), "a non-empty path"),
    "hub": ((str,), lambda v: "/" in v, "a hub id such as org/name"),
    "revision": ((str,), lambda v: bool(v), "a non-empty revision"),
    "backend": ((str,), lambda v: v in BACKENDS, f"one of {', '.join(BACKENDS)}"),
    "chat_template": ((str,), lambda v: bool(v), "a template name or path"),
    "trust_remote_code": ((bool,), lambda v: True, "true or false"),
    "dtype": ((str,), lambda v: v in ("auto", "bfloat16", "float16", "float32"), "auto, bfloat16, float16 or float32"),
    "max_model_len": ((int,), lambda v: v > 0, "a positive integer"),
    "tensor_parallel_size": ((int,), lambda v: v >= 1, "an integer >= 1"),
    "pipeline_parallel_size": ((int,), lambda v: v >= 1, "an integer >= 1"),
    "distributed_executor_backend": ((str,), lambda v: v in ("mp", "ray"), "mp or ray"),
    "gpu_memory_utilization": ((float, int), lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "enforce_eager": ((bool,), lambda v: True, "true or false"),
    "seed": ((int,), lambda v: True, "an integer"),
    "cpu_kv_cache_gib": ((int,), lambda v: v > 0, "a positive integer"),
    "fake_reply": ((str,), lambda v: True, "a string"),
    "gate_on": ((str,), lambda v: v in ("point", "interval"), "point or interval"),
    "base_url_env": ((str,), lambda v: bool(_ENV_RE.match(v)), "an environment variable name"),
    "api_key_env": ((str,), lambda v: bool(_ENV_RE.match(v)), "an environment variable name"),
    "served_model": ((str,), lambda v: bool(v), "a non-empty model name"),
    "concurrency": ((int,), lambda v: 1 <= v <= 1024, "an integer in [1, 1024]"),
    "request_timeout": ((float, int), lambda v: v > 0, "a positive number of seconds"),
    "max_retries": ((int,), lambda v: 0 <= v <= 20, "an integer in [0, 20]"),
    "tolerance": ((float, int), lambda v: 0 <= v <= 1, "a number in [0, 1]"),
}
_TABLES = ("thresholds", "tolerances", "expected_failures")

BUILTIN_TEMPLATES = Path(__file__).resolve().parent / "chat_templates"


@dataclass(frozen=True)
class Registry:
    """The parsed models.toml."""

    path: Path
    default: str
    models: Mapping[str, ModelSpec]

    def resolve(self, name: str) -> ModelSpec:
        """A registered name, or else an existing local path or a hub id with default settings."""
        if name in self.models:
            return self.models[name]
        if Path(name).expanduser().exists():
            return ModelSpec(name=_safe_id(name), source="path", location=str(Path(name).expanduser().resolve()), registered=False)
        if "/" in name and not name.startswith((".", "/")):
            return ModelSpec(name=_safe_id(name), source="hub", location=name, registered=False)
        known = ", ".join(sorted(self.models)) or "(none)"
        raise ConfigError(
            f"unknown model {name!r}: not in {self.path} and not an existing path or hub id; known models: {known}"
        )


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", dict: "table", list: "array"}.get(
        type(value), type(value).__name__
    )


def load_registry(path: Path) -> Registry:
    """Parse and validate models.toml; raise ConfigError naming the key on the first problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: models file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read models file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_registry(raw, path)


def parse_registry(raw: Mapping[str, Any], path: Path) -> Registry:
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{path}: {key}: {message}")

    unknown = sorted(set(raw) - {"default", "models"})
    if unknown:
        raise fail(unknown[0], "unknown top-level key (allowed: default, models)")
    models_raw = raw.get("models", {})
    if not isinstance(models_raw, dict):
        raise fail("models", f"must be a table, got {_type_name(models_raw)}")
    models: dict[str, ModelSpec] = {}
    for name, entry in models_raw.items():
        key = f"models.{name}"
        if not _NAME_RE.match(name):
            raise fail(key, "model names may hold letters, digits, '.', '_' and '-' only")
        if not isinstance(entry, dict):
            raise fail(key, f"must be a table, got {_type_name(entry)}")
        models[name] = _parse_model(name, entry, path, fail)
    default = raw.get("default")
    if default is None:
        default = next(iter(models), "")
    elif not isinstance(default, str):
        raise fail("default", f"must be a string, got {_type_name(default)}")
    elif default not in models:
        raise fail("default", f"names {default!r}, which is not a model in this file")
    return Registry(path=path, default=default, models=models)


def _parse_model(name: str, entry: Mapping[str, Any], path: Path, fail: Any) -> ModelSpec:
    key = f"models.{name}"
    values: dict[str, Any] = {}
    for field_name, value in entry.items():
        if field_name in _TABLES:
            continue
        if field_name not in _FIELDS:
            if isinstance(value, dict):
                raise fail(f"{key}.{field_name}", "unknown key; a model name holding dots must be quoted: "
                           f'[models."{name}.{field_name}"]')
            raise fail(f"{key}.{field_name}", f"unknown key (allowed: {', '.join(sorted([*_FIELDS, *_TABLES]))})")
        types, check, description = _FIELDS[field_name]
        # bool is an int in Python; keep "true" out of integer fields.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise fail(f"{key}.{field_name}", f"must be {description}, got {_type_name(value)} {value!r}")
        if not check(value):
            raise fail(f"{key}.{field_name}", f"must be {description}, got {value!r}")
        values[field_name] = value
    sources = [s for s in _SOURCES if s in values]
    if len(sources) != 1:
        raise fail(key, f"needs exactly one of {', '.join(_SOURCES)} (got {', '.join(sources) or 'none'})")
    source = sources[0]
    location = values.pop(source)
    if source == "path":
        location = str((path.parent / Path(location).expanduser()).resolve())
    if "chat_template" in values:
        values["chat_template"] = str(_resolve_template(values["chat_template"], path, f"{key}.chat_template", fail))
    for number_field in ("gpu_memory_utilization", "tolerance", "request_timeout"):
        if number_field in values:
            values[number_field] = float(values[number_field])
    thresholds = _parse_metric_table(entry.get("thresholds", {}), f"{key}.thresholds", fail, tolerance=False)
    tolerances = _parse_metric_table(entry.get("tolerances", {}), f"{key}.tolerances", fail, tolerance=True)
    expected = entry.get("expected_failures", {})
    if not isinstance(expected, dict):
        raise fail(f"{key}.expected_failures", f"must be a table of task = reason, got {_type_name(expected)}")
    for task_name, reason in expected.items():
        if task_name not in TASKS:
            raise fail(f"{key}.expected_failures.{task_name}", f"unknown task (known: {', '.join(TASKS)})")
        if not isinstance(reason, str) or not reason.strip():
            raise fail(f"{key}.expected_failures.{task_name}", "must be a non-empty reason")
    return ModelSpec(name=name, source=source, location=location, thresholds=thresholds, tolerances=tolerances,
                     expected_failures=dict(expected), **values)


def _resolve_template(value: str, path: Path, key: str, fail: Any) -> Path:
    builtin = BUILTIN_TEMPLATES / f"{value}.jinja"
    if builtin.is_file():
        return builtin
    candidate = (path.parent / value).resolve()
    if candidate.is_file():
        return candidate
    names = ", ".join(sorted(p.stem for p in BUILTIN_TEMPLATES.glob("*.jinja")))
    raise fail(key, f"{value!r} is neither a built-in template ({names}) nor a file next to {path.name}")


def _parse_metric_table(raw: Any, key: str, fail: Any, *, tolerance: bool) -> dict[str, dict[str, float]]:
    """task -> metric -> number; thresholds must lie in the metric's range, tolerances in [0, span]."""
    if not isinstance(raw, dict):
        raise fail(key, f"must be a table, got {_type_name(raw)}")
    out: dict[str, dict[str, float]] = {}
    for task_name, metrics in raw.items():
        task_key = f"{key}.{task_name}"
        if task_name not in TASKS:
            raise fail(task_key, f"unknown task (known: {', '.join(TASKS)})")
        if not isinstance(metrics, dict):
            raise fail(task_key, f"must be a table of metric = value, got {_type_name(metrics)}")
        specs = TASKS[task_name].metrics
        out[task_name] = {}
        for metric, value in metrics.items():
            metric_key = f"{task_key}.{metric}"
            if metric not in specs:
                raise fail(metric_key, f"unknown metric (known for {task_name}: {', '.join(specs)})")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise fail(metric_key, f"must be a number, got {_type_name(value)} {value!r}")
            low, high = specs[metric].bounds
            if tolerance:
                low, high = 0.0, high - low
            if not low <= value <= high:
                raise fail(metric_key, f"{value} is outside the {'allowed drop' if tolerance else 'metric' + chr(39) + 's range'} [{low}, {high}]")
            out[task_name][metric] = float(value)
    return out
