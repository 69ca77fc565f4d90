"""medgate: a release gate for clinical language models, as a pytest plugin and a library.

The public API below is what a team needs to write a task of its own (README, "Your own tasks");
it is a promise: names leave it only on purpose, in the README. Imported lazily, so that
``import medgate`` (and the plugin in a session that does not use it) stays light."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    # the task model
    "TaskSpec": "medgate.tasks.base",
    "MetricSpec": "medgate.core.types",
    "Sample": "medgate.core.types",
    "BatchScores": "medgate.core.types",
    "ScoringConfig": "medgate.core.types",
    "get_task": "medgate.tasks",
    # prompts: the protocol's few-shot chat and split
    "fewshot_chat": "medgate.tasks.base",
    "split_fewshot": "medgate.tasks.base",
    "FEWSHOT_SEED": "medgate.tasks.base",
    # checked readers: encodings, sizes, duplicates, Excel errors; errors name file, item and field
    "read_jsonl": "medgate.tasks.files",
    "read_json_list": "medgate.tasks.files",
    "read_table": "medgate.tasks.files",
    "require_columns": "medgate.tasks.files",
    "require_text": "medgate.tasks.files",
    "check_text": "medgate.tasks.files",
    "check_unique": "medgate.tasks.files",
    # metrics
    "rouge": "medgate.metrics.rouge",
    "score_texts": "medgate.metrics.text",
    "text_metrics": "medgate.metrics.text",
    "prf": "medgate.metrics.sets",
    "parse_codes": "medgate.tasks.medisumcode",
    "score_codes": "medgate.tasks.medisumcode",
    # errors a loader or scorer raises
    "MedgateError": "medgate.core.errors",
    "ConfigError": "medgate.core.errors",
    "DataError": "medgate.core.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'medgate' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
