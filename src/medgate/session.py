"""One model's engine and task results for a pytest session: loaded lazily, loaded once."""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager

from medgate.config import ModelSpec
from medgate.engines import Engine, make_engine
from medgate.errors import MedgateError
from medgate.fingerprint import fingerprint, resolve_location
from medgate.runner import TaskPlan, plan_task, score
from medgate.tasks.base import PromptContext, ScoringConfig, TaskSpec
from medgate.tokenization import model_context
from medgate.types import TaskResult


@dataclass(frozen=True)
class RunSettings:
    data_dir: Path
    data_source: str  # "synthetic" (shipped fixtures) or "user"
    limit: int | None
    scoring: ScoringConfig = ScoringConfig()


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

    def result(self, task: TaskSpec) -> TaskResult:
        cached = self._results.get(task.name)
        if isinstance(cached, MedgateError):
            raise cached
        if cached is not None:
            return cached
        try:
            context = self.prompt_context() if task.prepare is not None else None
            plan = plan_task(task, self.settings.data_dir, self.settings.limit, context)
            result = self._generate_and_score(plan)
        except MedgateError as exc:
            self._results[task.name] = exc
            raise
        self._results[task.name] = result
        return result

    def _generate_and_score(self, plan: TaskPlan) -> TaskResult:
        engine = self.engine
        started = time.monotonic()
        with self._quiet_capture():
            completions = engine.generate(plan.chats, plan.params, progress=self._progress(plan.task.name))
        seconds = time.monotonic() - started
        result = score(plan, completions, self.spec.name, self.settings.scoring)
        result.provenance.update(self.provenance)
        result.provenance["data_source"] = self.settings.data_source
        result.provenance["generation_seconds"] = round(seconds, 3)
        result.provenance["completion_tokens"] = sum(i.completion_tokens for i in result.items)
        return result

    def _progress(self, task: str) -> Callable[..., Any]:
        from tqdm import tqdm

        def factory(*args: Any, **kwargs: Any) -> Any:
            # vLLM opens two bars (rendering, then generation); label both with model and task.
            stage = "rendered" if str(kwargs.get("desc", "")).startswith("Render") else "generated"
            kwargs.update(desc=f"{self.spec.name} {task} {stage}", file=sys.__stderr__, unit="item")
            return tqdm(*args, **kwargs)

        return factory

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
