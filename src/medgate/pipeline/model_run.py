"""One model's run: its files, fingerprint and tokenizer, the plan of its selected tasks, one
batched generation through the caching engine, and each task's scored result. Everything is
loaded lazily and once; a failure is remembered, so the model's next task reports the same
cause instead of loading again."""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, ContextManager

from medgate.core.errors import EngineError, MedgateError
from medgate.core.types import Chat, GenParams, PromptContext, ScoringConfig, TaskResult
from medgate.models.engines import Engine, ProgressFactory, backend_of, make_engine
from medgate.models.fingerprint import fingerprint, resolve_location
from medgate.models.spec import ModelSpec
from medgate.models.tokenization import model_context
from medgate.pipeline.cache import GenerationCache, generation_identity, generation_key
from medgate.pipeline.caching import CachingEngine
from medgate.pipeline.plan import TaskPlan, plan_task
from medgate.pipeline.scoring import score
from medgate.tasks.base import TaskSpec
from medgate.tasks.reference_prompts import PromptSource


@dataclass(frozen=True)
class RunSettings:
    data_dir: Path
    data_source: str  # "synthetic" (shipped fixtures) or "user"
    limit: int | None
    scoring: ScoringConfig = ScoringConfig()
    cache_path: Path | None = None  # None: no generation cache (nor score cache)
    rejudge: bool = False  # only stored generations; never load an engine
    chunk_size: int = 1024  # prompts per engine call; each chunk is cached when done
    prompts: PromptSource = PromptSource()  # medgate's own prompts, or the reference's


class ModelRun:
    def __init__(self, spec: ModelSpec, settings: RunSettings,
                 quiet_capture: Callable[[], ContextManager[Any]] = nullcontext) -> None:
        self.spec = spec
        self.settings = settings
        self.provenance: dict[str, Any] = {"model": spec.name}
        self._engine: Engine | None = None
        self._failure: MedgateError | None = None  # the model could not be located or loaded
        self._location: str | None = None
        self._template: str | None = None
        self._context: PromptContext | None = None
        self._plans: dict[str, TaskPlan] = {}
        self._results: dict[str, TaskResult | MedgateError] = {}
        self._prefetched = False
        self._cache = GenerationCache(settings.cache_path) if settings.cache_path is not None else None
        self.generator = CachingEngine(self._open_engine, self._cache, model=spec.name,
                                       chunk_size=settings.chunk_size, rejudge=settings.rejudge,
                                       progress=self._progress, quiet=quiet_capture)

    # -- the model's files and engine -------------------------------------------------------------

    @property
    def location(self) -> str:
        """Where the model's files are (the embedded model is converted on first use)."""
        if self._failure is not None:
            raise self._failure.with_traceback(None)
        if self._location is None:
            try:
                location = resolve_location(self.spec)
            except MedgateError as exc:
                self._failure = exc
                raise
            self.provenance["model_location"] = location
            self.provenance["model_fingerprint"] = fingerprint(self.spec, location)
            if self.spec.chat_template:
                self._template = Path(self.spec.chat_template).read_text(encoding="utf-8")
            # Two runs with the same identity answer every prompt alike (the cache keys are equal).
            self.provenance["generation_identity"] = generation_identity(
                fingerprint=self.provenance["model_fingerprint"], spec=self.spec, template=self._template)
            self._location = location
        return self._location

    def _open_engine(self) -> Engine:
        if self._failure is not None:
            raise self._failure.with_traceback(None)
        if self._engine is None:
            try:
                self._engine = make_engine(self.spec, self.location)
            except MedgateError as exc:
                self._failure = exc
                raise
            self.provenance.update(self._engine.describe())
        return self._engine

    @property
    def engine(self) -> Engine:
        """The loaded engine (loaded on first use)."""
        return self._open_engine()

    def prompt_context(self) -> PromptContext:
        if self._context is None:
            self._context = model_context(self.spec, self.location)
        return self._context

    # -- plan, generate, score ---------------------------------------------------------------------

    def plan(self, task: TaskSpec) -> TaskPlan:
        if task.name not in self._plans:
            context = self.prompt_context() if task.prepare is not None else None
            self._plans[task.name] = plan_task(task, self.settings.data_dir, self.settings.limit, context,
                                               self.settings.prompts)
        return self._plans[task.name]

    def _requests(self, plan: TaskPlan) -> list[tuple[str, Chat, GenParams]]:
        self.location  # resolves the model's files and records its fingerprint
        fp = self.provenance["model_fingerprint"]
        return [(generation_key(fingerprint=fp, spec=self.spec, chat=chat, params=plan.params, template=self._template),
                 chat, plan.params) for chat in plan.chats]

    def prefetch(self, tasks: list[TaskSpec]) -> None:
        """The generation plan: every prompt of every selected task of this model, generated in
        one batched pass (chunked for the cache) before any task is scored. A task that cannot be
        planned keeps its error for its own tests; the others still run."""
        if self._prefetched:
            return
        self._prefetched = True
        pending: list[tuple[str, Chat, GenParams]] = []
        for task in tasks:
            try:
                pending += self._requests(self.plan(task))
            except MedgateError as exc:
                self._results[task.name] = exc
        try:
            self._generate(pending, label="all tasks")
        finally:
            # Every selected task's answers are in memory now: free the engine's memory and devices
            # for scoring and for the next model on this worker (an idle vLLM process slowed
            # BERTScore by a third on CPU).
            self._close_engine()

    def _generate(self, requests: list[tuple[str, Chat, GenParams]], label: str) -> None:
        try:
            self.generator.fill(requests, label)
        except EngineError as exc:
            self._failure = exc  # a dead engine stays dead: the model's next tests say so at once
            raise

    def result(self, task: TaskSpec) -> TaskResult:
        cached = self._results.get(task.name)
        if isinstance(cached, MedgateError):
            raise cached.with_traceback(None)  # remembered: raised afresh, without every earlier raise's frames
        if cached is not None:
            return cached
        try:
            result = self._generate_and_score(self.plan(task))
        except MedgateError as exc:
            self._results[task.name] = exc
            raise
        except Exception as exc:  # a scorer that breaks errors this task only, once, with the cause
            error = MedgateError(f"{self.spec.name} {task.name}: scoring failed ({type(exc).__name__}: {exc})")
            self._results[task.name] = error
            raise error from exc
        self._results[task.name] = result
        return result

    def _generate_and_score(self, plan: TaskPlan) -> TaskResult:
        if self.settings.rejudge and self.settings.cache_path is None:
            raise EngineError("--rejudge needs the generation cache; it is disabled (--no-cache)")
        started = time.monotonic()
        requests = self._requests(plan)
        try:
            self._generate(requests, label=plan.task.name)
        except EngineError as exc:
            raise EngineError(f"{exc} (task {plan.task.name}, first item {plan.items[0].id})") from None
        keys = [key for key, _, _ in requests]
        seconds = time.monotonic() - started
        result = score(plan, self.generator.answers(keys), self.spec.name, replace(self.settings.scoring, store=self._cache))
        if "engine" not in self.provenance:  # every answer came from the cache: no engine started
            backend = backend_of(self.spec)
            self.provenance.update(engine=backend.label, engine_version=backend.version(),
                                   device="none (every answer from the generation cache)")
        result.provenance.update(self.provenance)
        result.provenance["cached_items"] = self.generator.cached_count(keys)
        result.provenance["data_source"] = self.settings.data_source
        result.provenance["limit"] = self.settings.limit
        if self.spec.inherits:
            result.provenance["inherits"] = self.spec.inherits
        result.provenance["generation_seconds"] = round(seconds, 3)
        result.provenance["completion_tokens"] = sum(i.completion_tokens for i in result.items)
        return result

    def _progress(self, label: str) -> ProgressFactory:
        from tqdm import tqdm

        def factory(*args: Any, **kwargs: Any) -> Any:
            # vLLM opens two bars (rendering, then generation); label both with model and task.
            stage = "rendered" if str(kwargs.get("desc", "")).startswith("Render") else "generated"
            kwargs.update(desc=f"{self.spec.name} {label} {stage}", file=sys.__stderr__, unit="item")
            return tqdm(*args, **kwargs)

        return factory

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
            self.generator.cache = None
        self._close_engine()

    def _close_engine(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
