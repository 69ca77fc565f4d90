"""The model's own tokenizer, for prompt building that counts tokens (LongHealth's packing).

Loaded with transformers from the model's location, without starting an engine, so that
planning does not need the model in memory.
"""

from __future__ import annotations

from medgate.config import ModelSpec
from medgate.errors import EngineError
from medgate.tasks.base import PromptContext


def whitespace_context(context_len: int) -> PromptContext:
    """Words as tokens: for the fake backend, which has no tokenizer."""

    def truncate(text: str, n: int) -> str:
        return " ".join(text.split()[:n])

    return PromptContext(count_tokens=lambda t: len(t.split()), truncate=truncate, context_len=context_len)


def model_context(spec: ModelSpec, location: str) -> PromptContext:
    if spec.backend == "fake":
        return whitespace_context(spec.max_model_len)
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(location, revision=spec.revision, trust_remote_code=spec.trust_remote_code)
    except Exception as exc:  # transformers raises OSError, ValueError, ...: the cause is what matters
        raise EngineError(f"model {spec.name}: cannot load its tokenizer from {location}: {exc}") from exc

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    def truncate(text: str, n: int) -> str:
        ids = tokenizer.encode(text, add_special_tokens=False)[: max(n, 0)]
        return tokenizer.decode(ids)

    return PromptContext(count_tokens=count, truncate=truncate, context_len=spec.max_model_len)
