"""The engine interface (a batch of chats in, texts and token counts out) and what a backend
declares: its models.toml options, its engine id for the cache, the GPUs one engine needs on
this node, and how prompts count tokens."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

from medgate.core.types import Chat, Completion, GenParams, PromptContext
from medgate.models.spec import ModelSpec

# A tqdm-like factory (vLLM accepts one for its progress bar); None shows no bar.
ProgressFactory = Callable[..., Any]


class Engine(Protocol):
    """A loaded model."""

    def generate(
        self, chats: Sequence[Chat], params: GenParams | Sequence[GenParams], *, progress: ProgressFactory | None = None
    ) -> list[Completion]:
        """Answer every chat, in order; ``params`` is one setting for all or one per chat (so the
        tasks of a model, with their own answer lengths, go in one batch). An item that cannot run
        gets a Completion with ``error``."""
        ...

    def describe(self) -> dict[str, str]:
        """Engine name, version and device, for reports."""
        ...

    def close(self) -> None:
        """Free the model's memory."""
        ...


@dataclass(frozen=True)
class Option:
    """One models.toml key that a backend understands."""

    types: tuple[type, ...]
    check: Callable[[Any], bool]
    description: str
    default: Any


@dataclass(frozen=True)
class Backend:
    name: str
    label: str  # the engine's name in reports
    options: Mapping[str, Option]
    create: Callable[[ModelSpec, str], Engine]  # (spec, location of the model's files); imports its SDK lazily
    version: Callable[[], str]  # known without loading a model
    engine_id: Callable[[ModelSpec], str]  # part of every generation's cache key
    gpus: Callable[[ModelSpec], int] = lambda spec: 0  # GPUs one engine pins on this node
    prompt_context: Callable[[ModelSpec, str], PromptContext] | None = None  # None: the model's own tokenizer
    # Without GPUs: the environment variable in which the engine's CPU build takes the cores to bind
    # its threads to (None: it binds none), so each xdist worker's engine keeps to its own cores.
    cpu_bind_env: str | None = None
    remote: bool = False  # the weights live behind a server: the release record cannot hash them here

    def settings(self, spec: ModelSpec) -> dict[str, Any]:
        """Every option of this backend for a model: models.toml's value, else the default."""
        return {name: spec.options.get(name, option.default) for name, option in self.options.items()}


def per_chat(params: GenParams | Sequence[GenParams], n: int) -> list[GenParams]:
    """One GenParams per chat."""
    if isinstance(params, GenParams):
        return [params] * n
    listed = list(params)
    if len(listed) != n:
        raise ValueError(f"{len(listed)} decoding settings for {n} chats")
    return listed


def log_engine_event(spec: ModelSpec, event: str, count: int | None = None) -> None:
    """With ``MEDGATE_ENGINE_LOG`` naming a file, append "<event> <model> <pid> <worker> <detail>"
    (load: the pinned CUDA_VISIBLE_DEVICES or "-"; generate: the prompt count): how tests count
    engine loads, their devices and generated prompts across workers."""
    path = os.environ.get("MEDGATE_ENGINE_LOG")
    if not path:
        return
    detail = str(count) if count is not None else os.environ.get("CUDA_VISIBLE_DEVICES") or "-"
    fields = [event, spec.name, str(os.getpid()), os.environ.get("PYTEST_XDIST_WORKER", "main"), detail]
    with open(path, "a", encoding="utf-8") as handle:  # one short line per write: appends do not interleave
        handle.write(" ".join(fields) + "\n")
