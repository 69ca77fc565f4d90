"""The backend registry: one line per backend. Each backend module declares its options, engine
id, GPU needs and tokenizer, and imports its own SDK only when an engine is created."""

from __future__ import annotations

from medgate.core.errors import ConfigError
from medgate.models.engines import fake, openai_server, vllm_offline
from medgate.models.engines.base import Backend, Engine, ProgressFactory
from medgate.models.spec import ModelSpec

BACKENDS: dict[str, Backend] = {b.name: b for b in (vllm_offline.BACKEND, openai_server.BACKEND, fake.BACKEND)}


def backend_of(spec: ModelSpec) -> Backend:
    try:
        return BACKENDS[spec.backend]
    except KeyError:
        raise ConfigError(f"model {spec.name}: unknown backend {spec.backend!r} (known: {', '.join(BACKENDS)})") from None


def make_engine(spec: ModelSpec, location: str) -> Engine:
    return backend_of(spec).create(spec, location)


__all__ = ["BACKENDS", "Backend", "Engine", "ProgressFactory", "backend_of", "make_engine"]
