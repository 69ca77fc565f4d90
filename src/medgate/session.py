"""One model's engine and task results for a pytest session: loaded lazily, loaded once."""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, ContextManager

from medgate.baseline import load_baseline
from medgate.cache import GenerationCache, engine_id, generation_key
from medgate.config import ModelSpec
from medgate.engines import Engine, make_engine
from medgate.errors import EngineError, MedgateError
from medgate.fingerprint import fingerprint, resolve_location
from medgate.regression import Comparison, compare, judge
from medgate.runner import TaskPlan, plan_task, score
from medgate.tasks.base import PromptContext, ScoringConfig, TaskSpec
from medgate.tokenization import model_context
from medgate.types import Chat, Completion, GenParams, TaskResult


@dataclass(frozen=True)
class RunSettings:
    data_dir: Path
    data_source: str  # "synthetic" (shipped fixtures) or "user"
    limit: int | None
    scoring: ScoringConfig = ScoringConfig()
    cache_path: Path | None = None  # None: no generation cache
    rejudge: bool = False  # only stored generations; never load an engine
    chunk_size: int = 1024  # prompts per engine call; each chunk is cached when done


class ModelSession:
    """Holds one model's engine and memoises each task's result; a failure is remembered too,
    so the next test of this model reports the same cause instead of loading again."""

    def __init__(self, spec: ModelSpec, settings: RunSettings,
                 quiet_capture: Callable[[], ContextManager[Any]] = nullcontext) -> None:
        self.spec = spec
        self.settings = settings
        self._quiet_capture = quiet_capture
        self._engine: Engine | None = None
        self._location: str | None = None
        self._context: PromptContext | None = None
        self._generation_cache: GenerationCache | None = None
        self._comparisons: dict[tuple[str, str], Comparison] | None = None
        self._comparison_errors: dict[str, MedgateError] = {}
        self.saved_baselines: set[str] = set()
        self.attached_samples: set[str] = set()
        self._plans: dict[str, TaskPlan] = {}
        self._memory: dict[str, Completion] = {}  # this session's answers, also without the disk cache
        self._from_disk: set[str] = set()  # keys whose answer came from the disk cache
        self._prefetched = False
        self._engine_error: MedgateError | None = None
        self._results: dict[str, TaskResult | MedgateError] = {}
        self.provenance: dict[str, str] = {"model": spec.name}
        self.load_seconds: float | None = None

    @property
    def engine(self) -> Engine:
        if self._engine_error is not None:
            raise self._engine_error
        if self._engine is None:
            try:
                started = time.monotonic()
                self._engine = make_engine(self.spec, self.location)
                self.provenance.update(self._engine.describe())
                self.load_seconds = time.monotonic() - started
            except MedgateError as exc:
                self._engine_error = exc
                raise
        return self._engine

    @property
    def location(self) -> str:
        """Where the model's files are (the embedded model is converted on first use)."""
        if self._location is None:
            self._location = resolve_location(self.spec)
            self.provenance["model_location"] = self._location
            self.provenance["model_fingerprint"] = fingerprint(self.spec, self._location)
        return self._location

    def prompt_context(self) -> PromptContext:
        if self._context is None:
            self._context = model_context(self.spec, self.location)
        return self._context

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
                plan = self._plan(task)
            except MedgateError as exc:
                self._results[task.name] = exc
                continue
            pending += [(key, chat, plan.params) for key, chat in zip(self._keys(plan), plan.chats)]
        self._fill(pending, label="all tasks")
        # Every selected task's answers are in memory now: free the engine's memory and devices
        # for scoring and for the next model on this worker (an idle vLLM process slowed
        # BERTScore by a third on CPU).
        self._close_engine()

    def _plan(self, task: TaskSpec) -> TaskPlan:
        if task.name not in self._plans:
            context = self.prompt_context() if task.prepare is not None else None
            self._plans[task.name] = plan_task(task, self.settings.data_dir, self.settings.limit, context)
        return self._plans[task.name]

    def _keys(self, plan: TaskPlan) -> list[str]:
        self.location  # resolves the model's files and records its fingerprint
        fingerprint = self.provenance["model_fingerprint"]
        return [generation_key(fingerprint=fingerprint, spec=self.spec, chat=chat, params=plan.params) for chat in plan.chats]

    def _fill(self, pending: list[tuple[str, Chat, GenParams]], label: str) -> None:
        """Make sure every key has an answer: memory, then the disk cache, then the engine."""
        todo = [p for p in dict((k, (k, c, g)) for k, c, g in pending).values() if p[0] not in self._memory]
        cache = self._cache()
        if cache is not None and todo:
            found = cache.get_many([k for k, _, _ in todo])
            self._memory.update(found)
            self._from_disk.update(found)
            todo = [p for p in todo if p[0] not in found]
        if not todo:
            return
        if self.settings.rejudge:
            raise EngineError(
                f"model {self.spec.name} {label}: --rejudge found no stored generation for {len(todo)} prompts; "
                f"run without --rejudge"
            )
        engine = self.engine
        size = self.settings.chunk_size
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            shown = label if len(todo) <= size else f"{label} [{min(start + size, len(todo))}/{len(todo)}]"
            try:
                with self._quiet_capture():
                    # One engine call per chunk; each prompt keeps its own task's decoding settings.
                    answers = engine.generate([c for _, c, _ in chunk], [g for _, _, g in chunk],
                                              progress=self._progress(shown))
            except EngineError as exc:
                self._engine_error = exc  # a dead engine stays dead: the model's next tests say so at once
                raise
            stored = [(k, a) for (k, _, _), a in zip(chunk, answers)]
            if cache is not None:
                cache.put_many(self.spec.name, stored)
            self._memory.update(stored)

    def result(self, task: TaskSpec) -> TaskResult:
        cached = self._results.get(task.name)
        if isinstance(cached, MedgateError):
            raise cached
        if cached is not None:
            return cached
        try:
            result = self._generate_and_score(self._plan(task))
        except MedgateError as exc:
            self._results[task.name] = exc
            raise
        self._results[task.name] = result
        return result

    def samples(self, task: TaskSpec) -> list[dict[str, Any]]:
        """Per-item prompt, output and scores of a computed task, for the report."""
        result, plan = self.result(task), self._plans[task.name]
        return [{"id": item.id, "prompt": list(map(dict, chat)), "output": item.output, "scores": dict(item.scores),
                 "error": item.error} for item, chat in zip(result.items, plan.chats)]

    def comparisons(self, tasks: list[TaskSpec], root: Path, name: str, asking: TaskSpec) -> dict[tuple[str, str], Comparison]:
        """Every selected task of this model against baseline ``name``, Holm-adjusted together.

        A task whose data, engine or baseline fails is left out of the correction and its own
        tests get the error; the other tasks are still compared."""
        if self._comparisons is None:
            raw: list[Comparison] = []
            for task in tasks:
                try:
                    raw += compare(load_baseline(root, name, self.spec.name, task.name), self.result(task), task)
                except MedgateError as exc:
                    self._comparison_errors[task.name] = exc
            judged = judge(raw, self.spec.tolerance_for)
            self._comparisons = {(c.task, c.metric): c for c in judged}
        if asking.name in self._comparison_errors:
            raise self._comparison_errors[asking.name]
        return self._comparisons

    def _generate_and_score(self, plan: TaskPlan) -> TaskResult:
        started = time.monotonic()
        completions, cached = self._completions(plan)
        seconds = time.monotonic() - started
        # Model-based scores are cached beside the generations, and bypassed with them (--no-cache).
        scoring = replace(self.settings.scoring, cache_path=self.settings.cache_path)
        result = score(plan, completions, self.spec.name, scoring)
        if "engine" not in self.provenance:  # every answer came from the cache: no engine started
            self.provenance["engine"] = self.spec.backend
            self.provenance["device"] = "none (every answer from the generation cache)"
            if self.spec.backend == "vllm":
                self.provenance["engine_version"] = engine_id(self.spec).partition(":")[2]
        result.provenance.update(self.provenance)
        result.provenance["cached_items"] = cached
        result.provenance["data_source"] = self.settings.data_source
        result.provenance["generation_seconds"] = round(seconds, 3)
        result.provenance["completion_tokens"] = sum(i.completion_tokens for i in result.items)
        return result

    def _completions(self, plan: TaskPlan) -> tuple[list[Completion], int]:
        """Answers for every prompt of a plan, and how many came from the disk cache."""
        if self.settings.rejudge and self.settings.cache_path is None:
            raise EngineError("--rejudge needs the generation cache; it is disabled (--no-cache)")
        keys = self._keys(plan)
        try:
            self._fill([(k, c, plan.params) for k, c in zip(keys, plan.chats)], label=plan.task.name)
        except EngineError as exc:
            raise EngineError(f"{exc} (task {plan.task.name}, first item {plan.items[0].id})") from None
        return [self._memory[k] for k in keys], sum(k in self._from_disk for k in keys)

    def _cache(self) -> GenerationCache | None:
        if self.settings.cache_path is None:
            return None
        if self._generation_cache is None:
            self._generation_cache = GenerationCache(self.settings.cache_path)
        return self._generation_cache

    def _progress(self, task: str) -> Callable[..., Any]:
        from tqdm import tqdm

        def factory(*args: Any, **kwargs: Any) -> Any:
            # vLLM opens two bars (rendering, then generation); label both with model and task.
            stage = "rendered" if str(kwargs.get("desc", "")).startswith("Render") else "generated"
            kwargs.update(desc=f"{self.spec.name} {task} {stage}", file=sys.__stderr__, unit="item")
            return tqdm(*args, **kwargs)

        return factory

    def close(self) -> None:
        if self._generation_cache is not None:
            self._generation_cache.close()
            self._generation_cache = None
        self._close_engine()

    def _close_engine(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
