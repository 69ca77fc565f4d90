"""A fake engine for testing the plumbing (scheduling, reporting) without a model.

It answers every chat with the model's ``fake_reply``. Loads and generations go to the engine
log (``MEDGATE_ENGINE_LOG``, as every backend's) so tests can count them across workers.
``MEDGATE_FAKE_DELAY`` (seconds per chat) makes it slow enough to be killed mid-run;
``MEDGATE_FAKE_TOKEN_DELAY`` (seconds per prompt token) makes its cost follow prompt length, as
a real engine's does (the scale benchmark); ``MEDGATE_FAKE_DIE_AFTER`` ("<model>:<count>") makes
that model's engine die after that many answers, and ``MEDGATE_FAKE_EXIT_AFTER``
("<model>:<count>:<worker>") ends that worker's process at once, as a crash would.
``fake_rules`` (models.toml) gives per-item answers: the first [text, reply] whose text is in the
item's message. ``fake_planted`` (a list of texts) plants an answer derived from each prompt
(``planted_answer``): one of the texts, picked by a SHA-256 of the last user message (which holds
the item), tagged with that digest's first 8 hex digits, so every prompt's answer is its own and a
test can recompute it; an answer stored or scored under another prompt shows.
Words count as tokens: a prompt of at least ``max_model_len`` words is refused, as vLLM refuses
a prompt longer than the context.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Sequence

from medgate.core.errors import EngineError
from medgate.core.types import Chat, Completion, GenParams, PromptContext
from medgate.models.engines.base import Backend, Option, ProgressFactory, log_engine_event
from medgate.models.spec import ModelSpec


class FakeEngine:
    answered = 0  # answers given by this engine, for MEDGATE_FAKE_DIE_AFTER

    def __init__(self, spec: ModelSpec, location: str = "") -> None:
        self.spec = spec
        settings = BACKEND.settings(spec)
        self.reply = settings["fake_reply"]
        self.rules = [tuple(rule) for rule in settings["fake_rules"]]
        self.planted = list(settings["fake_planted"])
        log_engine_event(spec, "load")

    def generate(
        self, chats: Sequence[Chat], params: GenParams | Sequence[GenParams], *, progress: ProgressFactory | None = None
    ) -> list[Completion]:
        bar = progress(total=len(chats)) if progress else None
        delay = float(os.environ.get("MEDGATE_FAKE_DELAY", "0"))
        token_delay = float(os.environ.get("MEDGATE_FAKE_TOKEN_DELAY", "0"))
        doomed, _, count = os.environ.get("MEDGATE_FAKE_DIE_AFTER", "").partition(":")
        die_after = int(count) if doomed == self.spec.name else -1
        crash_model, crash_after, crash_worker = (os.environ.get("MEDGATE_FAKE_EXIT_AFTER", "") + "::").split(":")[:3]
        crashes = crash_model == self.spec.name and crash_worker == os.environ.get("PYTEST_XDIST_WORKER", "main")
        log_engine_event(self.spec, "generate", len(chats))
        out = []
        for chat in chats:
            if delay:
                time.sleep(delay)
            if 0 <= die_after <= self.answered:
                raise EngineError(f"model {self.spec.name}: the engine died after {self.answered} answers")
            if crashes and self.answered >= int(crash_after):
                os._exit(3)  # no cleanup, no report: what a segfault or an OOM kill leaves
            self.answered += 1
            prompt_tokens = sum(len(m["content"].split()) for m in chat)  # words as tokens
            if token_delay:
                time.sleep(token_delay * prompt_tokens)
            if prompt_tokens >= self.spec.max_model_len:  # as vLLM's engine refuses it
                out.append(Completion(text="", prompt_tokens=prompt_tokens, error=f"prompt of {prompt_tokens} tokens "
                                      f"does not fit the context of {self.spec.max_model_len} tokens"))
                continue
            text = self._reply(chat)
            out.append(Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=len(text.split()), finish_reason="stop"))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return out

    def _reply(self, chat: Chat) -> str:
        """The planted answer of the prompt (``fake_planted``), else the reply of the first rule
        whose text is in the item's message, else ``fake_reply``: per-item canned answers for
        planted better, worse or equal models."""
        if self.planted:
            return planted_answer(chat, self.planted)
        last = chat[-1]["content"]
        return next((reply for text, reply in self.rules if text in last), self.reply)

    def describe(self) -> dict[str, str]:
        return {"engine": "fake", "engine_version": "0", "device": "none"}

    def close(self) -> None:
        pass


def planted_answer(chat: Chat, choices: Sequence[str]) -> str:
    """The answer ``fake_planted = choices`` gives ``chat``: the choice picked by the SHA-256 of
    the last user message, then that digest's first 8 hex digits in brackets. hashlib, not
    ``hash()``: the same in every process, whatever PYTHONHASHSEED, so a test recomputes it."""
    if not choices:
        raise ValueError("planted_answer needs at least one choice")
    last = next((m["content"] for m in reversed(chat) if m["role"] == "user"), "")
    digest = hashlib.sha256(last.encode("utf-8")).hexdigest()
    return f"{choices[int(digest, 16) % len(choices)]} [{digest[:8]}]"


def whitespace_context(context_len: int) -> PromptContext:
    """Words as tokens: the fake backend has no tokenizer."""

    def truncate(text: str, n: int) -> str:
        return " ".join(text.split()[:n])

    return PromptContext(count_tokens=lambda t: len(t.split()), truncate=truncate, context_len=context_len)


def _engine_id(settings: dict[str, object]) -> str:
    """The answers decide the cache key: the reply, and the rules or planted choices when there are any."""
    if settings["fake_planted"]:
        return "fake:planted:" + json.dumps(settings["fake_planted"])
    if settings["fake_rules"]:
        return "fake:" + json.dumps([settings["fake_reply"], settings["fake_rules"]])
    return f"fake:{settings['fake_reply']}"


BACKEND = Backend(
    name="fake",
    label="fake",
    options={
        "fake_reply": Option((str,), lambda v: True, "a string", ""),
        "fake_rules": Option((list,), lambda v: all(isinstance(r, list) and len(r) == 2 and all(isinstance(x, str) for x in r)
                                                    for r in v), "a list of [text, reply] pairs", []),
        # answers derived from each prompt (planted_answer), for tests that check routing
        "fake_planted": Option((list,), lambda v: bool(v) and all(isinstance(x, str) for x in v),
                               "a non-empty list of texts", []),
        # GPUs one engine pretends to need, so tests can check each worker's pinning without a GPU
        "fake_gpus": Option((int,), lambda v: 0 <= v <= 64, "an integer in [0, 64]", 0),
    },
    create=FakeEngine,
    version=lambda: "0",
    engine_id=lambda spec: _engine_id(BACKEND.settings(spec)),
    prompt_context=lambda spec, location: whitespace_context(spec.max_model_len),
    gpus=lambda spec: int(BACKEND.settings(spec)["fake_gpus"]),
)
