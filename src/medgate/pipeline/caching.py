"""The caching engine: answers from this run's memory, then the generation cache on disk, and
only for what is missing from a real engine, created lazily (so a cached re-run loads no model).
Generation goes in chunks, each stored as soon as it is done, so a killed run keeps them."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Sequence

from medgate.core.errors import EngineError
from medgate.core.types import Chat, Completion, GenParams
from medgate.models.engines import Engine, ProgressFactory
from medgate.pipeline.cache import GenerationCache

Request = tuple[str, Chat, GenParams]  # (cache key, chat, decoding settings)


class CachingEngine:
    def __init__(self, open_engine: Callable[[], Engine], cache: GenerationCache | None, *, model: str,
                 chunk_size: int = 1024, rejudge: bool = False,
                 progress: Callable[[str], ProgressFactory | None] = lambda label: None,
                 quiet: Callable[[], ContextManager[Any]] = nullcontext) -> None:
        self._open_engine = open_engine
        self.cache = cache
        self.model = model
        self.chunk_size = chunk_size
        self.rejudge = rejudge  # only stored answers: a miss is an error, never a model load
        self._progress = progress
        self._quiet = quiet
        self.memory: dict[str, Completion] = {}
        self.from_disk: set[str] = set()  # keys whose answer came from the disk cache

    def fill(self, requests: Sequence[Request], label: str) -> None:
        """Make sure every key has an answer: memory, then the disk cache, then the engine."""
        todo = [r for r in dict((r[0], r) for r in requests).values() if r[0] not in self.memory]
        if self.cache is not None and todo:
            found = self.cache.get_many([key for key, _, _ in todo])
            self.memory.update(found)
            self.from_disk.update(found)
            todo = [r for r in todo if r[0] not in found]
        if not todo:
            return
        if self.rejudge:
            raise EngineError(f"model {self.model} {label}: --rejudge found no stored generation for {len(todo)} "
                              f"prompts; run without --rejudge")
        engine = self._open_engine()
        size = self.chunk_size
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            shown = label if len(todo) <= size else f"{label} [{min(start + size, len(todo))}/{len(todo)}]"
            with self._quiet():
                # One engine call per chunk; each prompt keeps its own task's decoding settings.
                answers = engine.generate([c for _, c, _ in chunk], [g for _, _, g in chunk],
                                          progress=self._progress(shown))
            stored = [(key, answer) for (key, _, _), answer in zip(chunk, answers)]
            if self.cache is not None:
                self.cache.put_many(self.model, stored)
            self.memory.update(stored)

    def answers(self, keys: Sequence[str]) -> list[Completion]:
        return [self.memory[key] for key in keys]

    def cached_count(self, keys: Sequence[str]) -> int:
        return sum(key in self.from_disk for key in keys)
