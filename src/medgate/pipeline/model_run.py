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
from medgate.core.types import PromptContext, ScoringConfig, TaskResult
from medgate.models.engines import Engine, ProgressFactory, backend_of, make_engine
from medgate.models.fingerprint import fingerprint, resolve_location
from medgate.models.spec import ModelSpec
from medgate.models.tokenization import model_context
from medgate.pipeline.board import ShardBoard
from medgate.pipeline.cache import GenerationCache, generation_identity, generation_key
from medgate.pipeline.caching import CachingEngine, Request
from medgate.pipeline.plan import TaskPlan, plan_task
from medgate.pipeline.scoring import score
from medgate.pipeline.shards import Shard, token_estimator
from medgate.tasks.base import TaskSpec
from medgate.tasks.reference_prompts import PromptSource
from medgate.tasks.trivial import trivial_baselines


@dataclass(frozen=True)
class RunSettings:
    data_dir: Path | None  # None: only tasks that name their file by path have data
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
        self._engine_described: dict[str, str] = {}  # the engine this run loaded, for the shard board
        self._failure: MedgateError | None = None  # the model could not be located or loaded
        self._location: str | None = None
        self._template: str | None = None
        self._context: PromptContext | None = None
        self._plans: dict[str, TaskPlan] = {}
        self._task_requests: dict[str, list[Request]] = {}
        self._results: dict[str, TaskResult | MedgateError] = {}
        self._prefetched = False
        self._shared: tuple[ShardBoard, list[Shard], float] | None = None  # data-parallel: who generates what
        self._solo: tuple[ShardBoard, str] | None = None  # one worker for the model: it reports progress only
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
            self._engine_described = self._engine.describe()
            self.provenance.update(self._engine_described)
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

    def _requests(self, plan: TaskPlan) -> list[Request]:
        if plan.task.name not in self._task_requests:
            self.location  # resolves the model's files and records its fingerprint
            fp = self.provenance["model_fingerprint"]
            self._task_requests[plan.task.name] = [
                (generation_key(fingerprint=fp, spec=self.spec, chat=chat, params=plan.params, template=self._template),
                 chat, plan.params) for chat in plan.chats]
        return self._task_requests[plan.task.name]

    def requests(self, tasks: list[TaskSpec]) -> list[Request]:
        """Every prompt of the given tasks, in task order. A task that cannot be planned keeps its
        error for its own tests; the others still run."""
        pending: list[Request] = []
        for task in tasks:
            try:
                pending += self._requests(self.plan(task))
            except MedgateError as exc:
                self._results[task.name] = exc
        return pending

    def unique_requests(self, tasks: list[TaskSpec]) -> list[Request]:
        """``requests`` with each key once (LongHealth shuffles can coincide): what shards split."""
        return list({key: (key, chat, params) for key, chat, params in self.requests(tasks)}.values())

    def estimates(self, requests: list[Request]) -> list[int]:
        """Estimated tokens of each request (prompt plus max new tokens), to balance shards."""
        try:
            count = self.prompt_context().count_tokens
        except MedgateError:  # no tokenizer: about four characters a token
            def count(text: str) -> int:
                return len(text) // 4
        estimate = token_estimator([chat for _, chat, _ in requests], count)
        return [estimate(chat) + params.max_tokens for _, chat, params in requests]

    def share(self, board: ShardBoard, shards: list[Shard], timeout: float) -> None:
        """Data-parallel generation: ``shards`` (of other workers too) generate this model's
        prompts; scoring waits on ``board`` until every one is stored."""
        self._shared = (board, shards, timeout)
        self.generator.run = board.run

    def report_to(self, board: ShardBoard, worker: str) -> None:
        """One worker generates the whole model (no more workers than models): it still reports
        on ``board`` as the model's only shard, for the xdist controller's progress bar."""
        self._solo = (board, worker)

    def generate_shard(self, shard: Shard, requests: list[Request], board: ShardBoard) -> None:
        """This worker's part of the model's prompts, into the cache, reported on the board. A
        failure is put on the board, where the scoring worker (maybe this one) raises it."""
        self.generator.run = board.run  # recorded as this run's, so the scoring worker can tell
        try:
            self._generate_reported([requests[i] for i in shard.requests], shard, board)
        except MedgateError:
            self._failure = None  # the board carries it: the scoring worker raises it naming shard and worker
        finally:
            self._close_engine()

    def _generate_reported(self, requests: list[Request], shard: Shard, board: ShardBoard) -> None:
        """Generate, reporting progress on the board (at most once a second) and the end: done,
        or failed with the cause (then raised again)."""
        board.start(shard, total=len(requests))
        last = [0.0]

        def report(done: int, tokens: int) -> None:
            if time.monotonic() - last[0] >= 1.0 or done == len(requests):
                last[0] = time.monotonic()
                board.advance(shard, done, tokens)

        try:
            self._generate(requests, shard.label if shard.count > 1 else "all tasks", on_progress=report)
        except Exception as exc:  # whatever it is, the board must say so, or a waiting worker waits on
            board.fail(shard, str(exc) if isinstance(exc, MedgateError) else f"{type(exc).__name__}: {exc}")
            raise
        board.finish(shard, self._engine_described)

    def prefetch(self, tasks: list[TaskSpec]) -> None:
        """The generation plan: every prompt of every selected task of this model, generated in
        one batched pass (chunked for the cache) before any task is scored. Under data-parallel
        generation, first wait until every shard is stored (other workers generated them)."""
        if self._prefetched:
            return
        self._prefetched = True
        pending = self.requests(tasks)
        try:
            if self._shared is not None:
                self._adopt_shards([key for key, _, _ in pending])
            if self._solo is not None:
                board, worker = self._solo
                unique = list({key: (key, chat, params) for key, chat, params in pending}.values())
                whole = Shard(model=self.spec.name, index=0, count=1, worker=worker,
                              requests=tuple(range(len(unique))), tokens=0)
                self._generate_reported(unique, whole, board)
            else:
                self._generate(pending, label="all tasks")
        finally:
            # Every selected task's answers are in memory now: free the engine's memory and devices
            # for scoring and for the next model on this worker (an idle vLLM process slowed
            # BERTScore by a third on CPU).
            self._close_engine()

    def _adopt_shards(self, keys: list[str]) -> None:
        assert self._shared is not None
        board, shards, timeout = self._shared
        try:
            rows = board.wait(shards, timeout)
        except EngineError as exc:
            self._failure = exc
            raise
        self.generator.adopt(board.run, keys)
        engines = [row.engine for row in rows if row.engine]
        if engines and "engine" not in self.provenance:
            self.provenance.update(engines[0])
        self.provenance["generation_workers"] = ",".join(shard.worker for shard in shards)

    def _generate(self, requests: list[Request], label: str, on_progress: Any = None) -> None:
        try:
            self.generator.fill(requests, label, on_progress)
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
        result.provenance["data_source"] = plan.data_source
        result.provenance["limit"] = self.settings.limit
        if self.spec.inherits:
            result.provenance["inherits"] = self.spec.inherits
        result.provenance["generation_seconds"] = round(seconds, 3)
        result.provenance["completion_tokens"] = sum(i.completion_tokens for i in result.items)
        # what constant, empty and echoed answers score on these items (ROUGE, accuracy: no encoder)
        try:
            result.provenance["trivial"] = trivial_baselines(plan.task, plan.items, plan.chats)
        except Exception as exc:  # a report-only figure: a (team's) scorer that rejects an empty answer must not error the task
            result.provenance.setdefault("notes", {})["trivial baselines"] = f"not computed: {type(exc).__name__}: {exc}"
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
