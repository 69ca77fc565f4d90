"""Build an engine for a model spec; each backend imports its own SDK lazily."""

from __future__ import annotations

from medgate.config import ModelSpec
from medgate.engines.base import Engine, ProgressFactory


def make_engine(spec: ModelSpec, location: str) -> Engine:
    if spec.backend == "fake":
        from medgate.engines.fake import FakeEngine

        return FakeEngine(spec)
    if spec.backend == "openai":
        from medgate.engines.openai_server import OpenAIServerEngine

        return OpenAIServerEngine(spec, location)
    from medgate.engines.vllm_offline import VllmEngine

    return VllmEngine(spec, location)


__all__ = ["Engine", "ProgressFactory", "make_engine"]
