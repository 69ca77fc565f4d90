"""What every task is: a loader, a prompt builder and a scorer, plus its protocol constants.

Loading reads a file; prompt building and ``score_sample`` are pure. ``score_batch`` may run a
model-based metric (BERTScore loads its encoder, and keeps scores in the store it is handed)."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from medgate.core.errors import ConfigError
from medgate.core.types import BatchScores, Chat, MetricSpec, PromptContext, Sample, ScoringConfig
from medgate.tasks.reference_prompts import PromptSource, ReferenceScript

FEWSHOT_SEED = 1  # PROTOCOL.md: random.seed(1); random.shuffle(items)


@dataclass(frozen=True)
class TaskSpec:
    """One clinical task.

    ``score_sample`` scores one output; tasks whose metrics work on batches (BERTScore) give
    ``score_batch`` instead. ``prepare`` turns loaded samples into the items to prompt when that
    depends on the model's tokenizer (LongHealth packs documents to the context budget).
    ``path`` names the data file directly, for a team's own task kept beside its test module.
    ``notes`` turns the totals of the items' ``meta`` into lines for the report. ``reference``
    says where the task's prompts live in the reference code and what changes when a run uses
    them (``with_prompts``). ``echo`` and ``constants`` give the trivial baselines' answers
    (medgate.tasks.trivial): an item's own input as its answer (None: the prompt's last user
    message), and named constant answers chosen from the scored items' gold (e.g. the majority label).
    """

    name: str
    title: str
    filename: str  # the user's real file, under its original name, in the data directory
    fewshot: int
    max_new_tokens: int
    metrics: Mapping[str, MetricSpec]
    load_samples: Callable[[Path], list[Sample]]
    build_prompt: Callable[[Sample, Sequence[Sample]], Chat]
    prompt_version: str
    score_sample: Callable[[str, Sample], dict[str, float]] | None = None
    score_batch: Callable[[Sequence[str], Sequence[Sample], ScoringConfig], BatchScores] | None = None
    prepare: Callable[[list[Sample], PromptContext], list[Sample]] | None = None
    notes: Callable[[Mapping[str, int]], dict[str, str]] | None = None
    alt_filenames: tuple[str, ...] = ()  # other accepted names, tried in order after ``filename``
    reference: ReferenceScript | None = None
    # A data file given by path (relative to the test module that defines the task, resolved at
    # collection); a file of ``filename`` in --data-dir wins, so real data replaces a sample file.
    path: str | Path | None = None
    # Trivial baselines (summary): the item's input as the answer, and constant answers by name.
    echo: Callable[[Sample], str] | None = None
    constants: Callable[[Sequence[Sample]], dict[str, str]] | None = None

    def __post_init__(self) -> None:
        if (self.score_sample is None) == (self.score_batch is None):
            raise ValueError(f"task {self.name}: give exactly one of score_sample and score_batch")
        for key, spec in self.metrics.items():
            if key != spec.name:
                raise ValueError(f"task {self.name}: metric {key!r} is declared under the name {spec.name!r}")

    def with_prompts(self, prompts: PromptSource) -> TaskSpec:
        """This task as a run with these prompts builds it: itself for medgate's own prompts (and
        for a task the reference code does not have); in
        reference mode, the reference's prompt builder (and loader, packing) with a prompt version
        that holds the templates' hash."""
        if not prompts.is_reference or self.reference is None:
            return self  # a task with no reference code (a team's own) keeps its prompts
        if self.name not in prompts.templates:
            raise ConfigError(f"task {self.name}: no reference prompts to use")
        changes = dict(self.reference.variant(prompts.templates[self.name]))
        return replace(self, prompt_version=prompts.prompt_version(self.name, self.prompt_version), **changes)

    @property
    def metric_names(self) -> list[str]:
        return list(self.metrics)

    def score_all(self, outputs: Sequence[str], samples: Sequence[Sample], scoring: ScoringConfig) -> BatchScores:
        """Score every output and check that the scorer emitted exactly the declared metrics."""
        if self.score_batch is not None:
            batch = self.score_batch(outputs, samples, scoring)
        else:
            assert self.score_sample is not None  # __post_init__
            batch = BatchScores([self.score_sample(o, s) for o, s in zip(outputs, samples)])
        self.check_keys(batch)
        return batch

    def check_keys(self, batch: BatchScores) -> None:
        """A score key that drifts from its metric's name would read as "no items were scored":
        refuse it here, naming the key."""
        declared = set(self.metrics)
        for index, scores in enumerate(batch.per_item):
            unknown = set(scores) - declared
            for name, value in scores.items():
                # A string, None or NaN would be averaged or compared as if it were a score.
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                    raise ValueError(f"task {self.name}: the scorer gave item {index} metric {name!r} the value "
                                     f"{value!r} ({type(value).__name__}), not a number")
            if unknown:
                raise ValueError(f"task {self.name}: the scorer emitted undeclared metric(s) "
                                 f"{', '.join(sorted(unknown))} for item {index} (declared: {', '.join(self.metrics)})")
        for name in set(batch.not_computed) - declared:
            raise ValueError(f"task {self.name}: 'not computed' names undeclared metric {name!r}")

    def aggregate(self, per_item: Sequence[Mapping[str, float]]) -> dict[str, float | None]:
        """Mean of every metric over items (each item once: the reference counted item 0 twice)."""
        out: dict[str, float | None] = {}
        for metric in self.metrics:
            values = [scores[metric] for scores in per_item if metric in scores]
            out[metric] = sum(values) / len(values) if values else None
        return out


def fewshot_chat(system: str, user_text: Callable[[Sample], str], sample: Sample, shots: Sequence[Sample],
                 answer: Callable[[Sample], str] = lambda shot: str(shot.reference)) -> Chat:
    """The protocol's chat: one system message, each shot as a user/assistant pair, then the item."""
    chat = [{"role": "system", "content": system}]
    for shot in shots:
        chat += [{"role": "user", "content": user_text(shot)}, {"role": "assistant", "content": answer(shot)}]
    chat.append({"role": "user", "content": user_text(sample)})
    return chat


def fewshot_script(file: str, user: tuple[str, ...], answer: tuple[str, ...],
                   values: Callable[[Sample], Mapping[str, str]], answer_template: str = "assistant_response_template",
                   ) -> ReferenceScript:
    """A few-shot task's reference script: ``sys_prompt`` used verbatim, ``user_prompt_template``
    with the ``user`` placeholders and the answer template with the ``answer`` ones, each filled
    with ``str.format`` from ``values`` (the reference's field values of an item)."""

    def variant(texts: Mapping[str, str]) -> dict[str, Any]:
        system, user_template, answer_text = texts["sys_prompt"], texts["user_prompt_template"], texts[answer_template]

        def build_prompt(sample: Sample, shots: Sequence[Sample]) -> Chat:
            return fewshot_chat(system, lambda s: user_template.format(**values(s)), sample, shots,
                                answer=lambda s: answer_text.format(**values(s)))

        return {"build_prompt": build_prompt}

    constants = {"sys_prompt": None, "user_prompt_template": user, answer_template: answer}
    return ReferenceScript(file=file, constants=constants, variant=variant)


def split_fewshot(samples: Sequence[Sample], k: int, seed: int = FEWSHOT_SEED) -> tuple[list[Sample], list[Sample]]:
    """Shuffle as the reference does and take the first k items as few-shot examples."""
    items = list(samples)
    random.Random(seed).shuffle(items)
    return items[:k], items[k:]

