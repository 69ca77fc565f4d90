"""models.toml: the registry of named models, their engine settings and their pass criteria.

The file is parsed with ``tomllib`` (never executed) and validated as a whole on load; every
problem is a :class:`ConfigError` naming the file and the dotted key. The pass criteria
(thresholds, tolerances, margins, known gaps and their rules) are checked here for their types
and kept as plain tables; their task and metric names are checked by judging against the run's
task catalogue, which only collection knows (a team's own tasks live in its test modules).
"""

from __future__ import annotations

import codecs
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from medgate.core.errors import ConfigError
from medgate.core.io import NAME_CHARS, is_safe_name
from medgate.models.engines import BACKENDS
from medgate.models.engines.base import Option
from medgate.models.spec import ModelSpec
from medgate.tasks.reference_prompts import parse_prompt_spec

_SOURCES = ("embedded", "path", "hub")
EMBEDDED_MODELS = ("smollm2",)


# The keys every model may have (a backend adds its own options); the check returns True when
# the value is allowed. None as default: not set.
_FIELDS: dict[str, Option] = {
    "embedded": Option((str,), lambda v: v in EMBEDDED_MODELS, f"one of {', '.join(EMBEDDED_MODELS)}", None),
    "path": Option((str,), lambda v: bool(v), "a non-empty path", None),
    "hub": Option((str,), lambda v: "/" in v, "a hub id such as org/name", None),
    "revision": Option((str,), lambda v: bool(v), "a non-empty revision", None),
    "backend": Option((str,), lambda v: v in BACKENDS, f"one of {', '.join(BACKENDS)}", "vllm"),
    "chat_template": Option((str,), lambda v: bool(v), "a template name or path", None),
    "trust_remote_code": Option((bool,), lambda v: True, "true or false", False),
    "dtype": Option((str,), lambda v: v in ("auto", "bfloat16", "float16", "float32"),
                    "auto, bfloat16, float16 or float32", "auto"),
    "max_model_len": Option((int,), lambda v: v > 0, "a positive integer", 4096),
    "seed": Option((int,), lambda v: True, "an integer", 0),
    "gate_on": Option((str,), lambda v: v in ("point", "interval"), "point or interval", "point"),
    "tolerance": Option((float, int), lambda v: 0 <= v <= 1, "a number in [0, 1]", 0.0),
    "regression": Option((str,), lambda v: v in ("significant_drop", "non_inferiority"),
                         "significant_drop or non_inferiority", "significant_drop"),
    "inconclusive": Option((str,), lambda v: v in ("fail", "xfail"), "fail or xfail", "fail"),
    "inherits": Option((str,), lambda v: bool(v), "the name of another model in this file", None),
    "step": Option((int,), lambda v: v >= 0, "a non-negative integer (the checkpoint's training step)", None),
    # the model's name in the published CLUE figures, for `medgate table --published`
    "published": Option((str,), lambda v: bool(v.strip()), "a model name of the published figures", None),
}
_TABLES = ("thresholds", "tolerances", "margins", "expected_failures")
_CRITERIA = ("gate_on", "tolerance", "regression", "inconclusive")  # scalars that are pass criteria

BUILTIN_TEMPLATES = Path(__file__).resolve().parent / "chat_templates"


@dataclass(frozen=True)
class Registry:
    """The parsed models.toml."""

    path: Path
    default: str | None  # None: the file defines no model
    models: Mapping[str, ModelSpec]
    aliases: Mapping[str, str] = field(default_factory=dict)  # the name users say -> a model in ``models``
    prompts: str | None = None  # "medgate" or "reference:DIR" (DIR relative to this file), when the file sets it
    # model -> its pass criteria as models.toml gives them (types checked; names checked by judging)
    criteria: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def criteria_of(self, spec: ModelSpec) -> tuple[str, Mapping[str, Any]]:
        """The models.toml key and raw criteria that gate ``spec``: its own entry's, or for a
        checkpoint that took another model's settings (``--model PATH --against BASE``), BASE's."""
        owner = spec.name if spec.registered else spec.inherits
        if owner is None or owner not in self.criteria:
            return f"models.{spec.name}", {}
        return f"models.{owner}", self.criteria[owner]

    def derive(self, name: str, base: ModelSpec) -> ModelSpec:
        """A checkpoint given by path or hub id that takes ``base``'s engine settings, chat template,
        thresholds and margins (``--model PATH --against BASE``)."""
        own = self.resolve(name)
        if own.registered:
            return own  # models.toml has its own entry: it wins
        return replace(base, name=own.name, source=own.source, location=own.location, revision=None,
                       registered=False, inherits=base.name)

    def resolve(self, name: str) -> ModelSpec:
        """A registered name or alias, or else an existing local path or a hub id with default settings."""
        if name in self.models:
            return self.models[name]
        if name in self.aliases:
            return self.models[self.aliases[name]]
        folded = [m for m in (*self.models, *self.aliases) if m.casefold() == name.casefold()]
        if len({self.aliases.get(m, m) for m in folded}) == 1:  # "biomistral-7b": one model, whatever the case
            return self.resolve(folded[0])
        if Path(name).expanduser().exists():
            location = Path(name).expanduser().resolve()
            return ModelSpec(name=self._path_name(location), source="path", location=str(location), registered=False)
        if "/" in name and not name.startswith((".", "/")):
            return ModelSpec(name=_safe_id(name), source="hub", location=name, registered=False)
        known = ", ".join(sorted(self.models)) or "(none)"
        aliases = "; aliases: " + ", ".join(f"{a} -> {m}" for a, m in sorted(self.aliases.items())) if self.aliases else ""
        raise ConfigError(
            f"unknown model {name!r}: not in {self.path} and not an existing path or hub id; known models: {known}{aliases}"
        )


    def _path_name(self, location: Path) -> str:
        """A folder's model name as users say it (./checkpoints/step-5000 -> step-5000); with its
        parent folders when that name is taken by a registered model."""
        parts = [p for p in location.parts if p not in ("/", "")]
        for depth in range(1, len(parts) + 1):
            candidate = _safe_id("_".join(parts[-depth:]))
            if candidate not in self.models:
                return candidate
        return _safe_id(str(location))


def _safe_id(text: str) -> str:
    """A path or hub id as a model name that is also safe in file names and test ids."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", dict: "table", list: "array"}.get(
        type(value), type(value).__name__
    )


def load_registry(path: Path) -> Registry:
    """Parse and validate models.toml; raise ConfigError naming the key on the first problem."""
    try:
        raw = tomllib.loads(_config_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_registry(raw, path)


_MAX_CONFIG_BYTES = 4 << 20


def _config_text(path: Path) -> str:
    """The file's text: UTF-8 with or without a byte order mark (Windows editors write one),
    or UTF-16 with one; anything else is one error naming the byte."""
    try:
        if not path.is_file():
            raise ConfigError(f"{path}: models file not found" if not path.exists() else f"{path}: not a regular file")
        with path.open("rb") as handle:
            data = handle.read(_MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read models file: {exc.strerror}") from None
    if len(data) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {_MAX_CONFIG_BYTES >> 20} MiB; not a models file")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: UTF-16 byte order mark, but not valid UTF-16; save it as UTF-8") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 (byte 0x{data[exc.start]:02X} at byte offset {exc.start}); "
                          "save it as UTF-8") from None


def parse_registry(raw: Mapping[str, Any], path: Path) -> Registry:
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{path}: {key}: {message}")

    unknown = sorted(set(raw) - {"default", "models", "prompts", "aliases"})
    if unknown:
        raise fail(unknown[0], "unknown top-level key (allowed: default, models, prompts, aliases)")
    prompts = _parse_prompts(raw.get("prompts"), fail)
    models_raw = raw.get("models", {})
    if not isinstance(models_raw, dict):
        raise fail("models", f"must be a table, got {_type_name(models_raw)}")
    models: dict[str, ModelSpec] = {}
    criteria: dict[str, dict[str, Any]] = {}
    for name, entry in models_raw.items():
        key = f"models.{name}"
        if not is_safe_name(name):
            raise fail(key, f"model names may hold {NAME_CHARS} only")
        if not isinstance(entry, dict):
            raise fail(key, f"must be a table, got {_type_name(entry)}")
    for name in models_raw:
        models[name], criteria[name] = _parse_model(name, _inherited(name, models_raw, fail), path, fail)
    aliases = _parse_aliases(raw.get("aliases", {}), models, fail)
    default = raw.get("default")
    if default is None:
        default = next(iter(models), None)
    elif not isinstance(default, str):
        raise fail("default", f"must be a string, got {_type_name(default)}")
    elif default not in models and default not in aliases:
        raise fail("default", f"names {default!r}, which is not a model or alias in this file")
    return Registry(path=path, default=aliases.get(default, default), models=models, aliases=aliases, prompts=prompts,
                    criteria=criteria)


def _parse_prompts(value: Any, fail: Any) -> str | None:
    """The run's prompts: "medgate" or "reference:DIR"; the checkout itself is read when the run starts."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail("prompts", f"must be a string, got {_type_name(value)} {value!r}")
    try:
        parse_prompt_spec(value)
    except ValueError as exc:
        raise fail("prompts", str(exc)) from None
    return value


def _inherited(name: str, raw: Mapping[str, Any], fail: Any, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A model's entry with what it inherits (``inherits = "NAME"``): NAME's keys, its own keys
    on top; tables (thresholds, ...) merge per task. The source (path, hub, embedded, revision) is
    never inherited: it is another model."""
    entry = dict(raw[name])
    base_name = entry.get("inherits")
    if base_name is None:
        return entry
    key = f"models.{name}.inherits"
    if not isinstance(base_name, str) or base_name not in raw:
        raise fail(key, f"names {base_name!r}, which is not a model in this file")
    if base_name in seen or base_name == name:
        raise fail(key, f"inherits in a circle ({' -> '.join((*seen, name, base_name))})")
    base = {k: v for k, v in _inherited(base_name, raw, fail, (*seen, name)).items()
            if k not in (*_SOURCES, "revision", "inherits", "step")}
    # Another backend (a fake stand-in for a real model in a test): the base's backend options
    # stay behind; everything else (criteria, shared settings) is inherited.
    base_backend, own_backend = base.get("backend", "vllm"), entry.get("backend", base.get("backend", "vllm"))
    if own_backend != base_backend and base_backend in BACKENDS and own_backend in BACKENDS:
        foreign = set(BACKENDS[base_backend].options) - set(BACKENDS[own_backend].options)
        base = {k: v for k, v in base.items() if k not in foreign}
    for table in _TABLES:
        if isinstance(base.get(table), dict) and isinstance(entry.get(table), dict):
            entry[table] = {**base[table], **entry[table]}
    return {**base, **entry}


def _parse_aliases(raw: Any, models: Mapping[str, ModelSpec], fail: Any) -> dict[str, str]:
    """``alias = "model"``: the short names users type (``--model meditron``), each naming a model
    of this file; an alias may not shadow a model, so a name always means one thing."""
    if not isinstance(raw, dict):
        raise fail("aliases", f"must be a table of alias = model name, got {_type_name(raw)}")
    for alias, target in raw.items():
        key = f"aliases.{alias}"
        if not is_safe_name(alias):
            raise fail(key, f"alias names may hold {NAME_CHARS} only")
        if isinstance(target, dict):
            raise fail(key, f'must be a model name; an alias holding dots must be quoted: "{alias}.{next(iter(target), "")}" = ...')
        if not isinstance(target, str):
            raise fail(key, f"must be a model name, got {_type_name(target)} {target!r}")
        if alias in models:
            raise fail(key, "is already the name of a model; an alias must be a new name")
        if target not in models:
            known = ", ".join(sorted(models)) or "(none)"
            raise fail(key, f"names {target!r}, which is not a model in this file (models: {known})")
    return dict(raw)


def _check_value(key: str, value: Any, option: Option, fail: Any) -> Any:
    # bool is an int in Python; keep "true" out of integer fields.
    if not isinstance(value, option.types) or (isinstance(value, bool) and bool not in option.types):
        raise fail(key, f"must be {option.description}, got {_type_name(value)} {value!r}")
    if not option.check(value):
        raise fail(key, f"must be {option.description}, got {value!r}")
    return float(value) if float in option.types and not isinstance(value, bool) else value


def _parse_model(name: str, entry: Mapping[str, Any], path: Path, fail: Any) -> tuple[ModelSpec, dict[str, Any]]:
    key = f"models.{name}"
    backend_name = entry.get("backend", _FIELDS["backend"].default)
    backend_name = _check_value(f"{key}.backend", backend_name, _FIELDS["backend"], fail)
    backend = BACKENDS[backend_name]
    values: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for field_name, value in entry.items():
        if field_name in _TABLES:
            continue
        if field_name in _FIELDS:
            values[field_name] = _check_value(f"{key}.{field_name}", value, _FIELDS[field_name], fail)
        elif field_name in backend.options:
            options[field_name] = _check_value(f"{key}.{field_name}", value, backend.options[field_name], fail)
        elif isinstance(value, dict):
            raise fail(f"{key}.{field_name}", "unknown key; a model name holding dots must be quoted: "
                       f'[models."{name}.{field_name}"]')
        else:
            owners = [b.name for b in BACKENDS.values() if field_name in b.options]
            if owners:
                raise fail(f"{key}.{field_name}", f"an option of backend {' and '.join(owners)}, not of backend "
                           f"{backend.name} (its options: {', '.join(backend.options) or 'none'})")
            allowed = sorted([*_FIELDS, *backend.options, *_TABLES])
            raise fail(f"{key}.{field_name}", f"unknown key (allowed: {', '.join(allowed)})")
    sources = [s for s in _SOURCES if s in values]
    if len(sources) != 1:
        raise fail(key, f"needs exactly one of {', '.join(_SOURCES)} (got {', '.join(sources) or 'none'})")
    source = sources[0]
    location = values.pop(source)
    if source == "path":
        location = str((path.parent / Path(location).expanduser()).resolve())
    if "chat_template" in values:
        values["chat_template"] = str(_resolve_template(values["chat_template"], path, f"{key}.chat_template", fail))
    criteria: dict[str, Any] = {k: values.pop(k) for k in _CRITERIA if k in values}
    for table in ("thresholds", "tolerances", "margins"):
        criteria[table] = _parse_metric_table(entry.get(table, {}), f"{key}.{table}", fail)
    expected = entry.get("expected_failures", {})
    if not isinstance(expected, dict):
        raise fail(f"{key}.expected_failures", f"must be a table of task = reason, got {_type_name(expected)}")
    for task_name, reason in expected.items():
        if not isinstance(reason, str) or not reason.strip():
            raise fail(f"{key}.expected_failures.{task_name}", "must be a non-empty reason")
    criteria["expected_failures"] = dict(expected)
    return ModelSpec(name=name, source=source, location=location, options=options, **values), criteria


def _resolve_template(value: str, path: Path, key: str, fail: Any) -> Path:
    builtin = BUILTIN_TEMPLATES / f"{value}.jinja"
    if builtin.is_file():
        return builtin
    candidate = (path.parent / value).resolve()
    if candidate.is_file():
        return candidate
    names = ", ".join(sorted(p.stem for p in BUILTIN_TEMPLATES.glob("*.jinja")))
    raise fail(key, f"{value!r} is neither a built-in template ({names}) nor a file next to {path.name}")


def _parse_metric_table(raw: Any, key: str, fail: Any) -> dict[str, dict[str, float]]:
    """task -> metric -> number; whether the task and metric exist, and the range, judging checks
    once the run's tasks are known."""
    if not isinstance(raw, dict):
        raise fail(key, f"must be a table, got {_type_name(raw)}")
    out: dict[str, dict[str, float]] = {}
    for task_name, metrics in raw.items():
        task_key = f"{key}.{task_name}"
        if not isinstance(metrics, dict):
            raise fail(task_key, f"must be a table of metric = value, got {_type_name(metrics)}")
        out[task_name] = {}
        for metric, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise fail(f"{task_key}.{metric}", f"must be a number, got {_type_name(value)} {value!r}")
            out[task_name][metric] = value  # as written (errors quote it so); judging makes it a float
    return out
