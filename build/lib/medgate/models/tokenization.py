"""The model's own tokenizer, for prompt building that counts tokens (LongHealth's packing).

Loaded without starting an engine, so that planning does not need the model in memory. A local
model with a ``tokenizer.json`` is read with the ``tokenizers`` library directly: the same
encoder that transformers' fast tokenizer wraps, without the seconds that importing
transformers costs (which matters on a cached re-run, where nothing else needs it). Anything
else (hub ids, slow-only tokenizers, trust_remote_code) goes through ``AutoTokenizer``. Both
decode raw, without transformers' optional space clean-up, so a cut text is the same either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from medgate.core.errors import EngineError
from medgate.core.types import PromptContext
from medgate.models.engines import backend_of
from medgate.models.spec import ModelSpec


def model_context(spec: ModelSpec, location: str) -> PromptContext:
    """Token counting for prompt building: the backend's own (the fake has none), else the model's tokenizer."""
    custom = backend_of(spec).prompt_context
    if custom is not None:
        return custom(spec, location)
    folder = Path(location)
    if not spec.trust_remote_code and (folder / "tokenizer.json").is_file():
        return _fast_context(spec, folder)
    return _transformers_context(spec, location)


def _fast_context(spec: ModelSpec, folder: Path) -> PromptContext:
    import tokenizers

    try:
        tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
        raise EngineError(f"model {spec.name}: cannot load {folder / 'tokenizer.json'}: {exc}") from exc
    return _context(spec, lambda text: tokenizer.encode(text, add_special_tokens=False).ids,
                    lambda ids: tokenizer.decode(ids, skip_special_tokens=False))


def _transformers_context(spec: ModelSpec, location: str) -> PromptContext:
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(location, revision=spec.revision, trust_remote_code=spec.trust_remote_code)
    except Exception as exc:  # transformers raises OSError, ValueError, ...: the cause is what matters
        raise EngineError(f"model {spec.name}: cannot load its tokenizer from {location}: {exc}") from exc
    return _context(spec, lambda text: tokenizer.encode(text, add_special_tokens=False),
                    lambda ids: tokenizer.decode(ids, clean_up_tokenization_spaces=False))  # raw, as the fast path


def _context(spec: ModelSpec, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str]) -> PromptContext:
    def truncate(text: str, n: int) -> str:
        return decode(encode(text)[: max(n, 0)])

    return PromptContext(count_tokens=lambda text: len(encode(text)), truncate=truncate, context_len=spec.max_model_len)
