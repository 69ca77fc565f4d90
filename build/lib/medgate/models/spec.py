"""One model as the suite runs it: where its files are, the engine settings that change its
answers and its backend's own options. Its pass criteria live in judging (criteria.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str  # "embedded", "path" or "hub"
    location: str  # embedded name, filesystem path or hub id
    revision: str | None = None
    backend: str = "vllm"
    options: Mapping[str, Any] = field(default_factory=dict)  # the backend's own options, as models.toml gave them
    chat_template: str | None = None  # resolved path to a Jinja file
    trust_remote_code: bool = False
    dtype: str = "auto"
    max_model_len: int = 4096
    seed: int = 0
    registered: bool = True  # False: a path or hub id given on the command line
    inherits: str | None = None  # the model whose settings and pass criteria this one took
    step: int | None = None  # a checkpoint's training step (the series report; default: the number in its name)
    published: str | None = None  # its name in the published CLUE figures (medgate table --published)
