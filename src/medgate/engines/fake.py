"""A fake engine for testing the plumbing (scheduling, reporting) without a model.

It answers every chat with the model's ``fake_reply``. When ``MEDGATE_FAKE_LOAD_LOG`` names a
file, each load appends a line "<model> <pid> <worker>" so tests can count engine loads across
workers; ``MEDGATE_FAKE_DELAY`` (seconds per chat) makes it slow enough to be killed mid-run;
``MEDGATE_FAKE_DIE_AFTER`` ("<model>:<count>") makes that model's engine die after that many answers.
"""

from __future__ import annotations

import os
import time
from typing import Sequence

from medgate.config import ModelSpec
from medgate.engines.base import ProgressFactory
from medgate.errors import EngineError
from medgate.types import Chat, Completion, GenParams


class FakeEngine:
    answered = 0  # answers given by this engine, for MEDGATE_FAKE_DIE_AFTER
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        log = os.environ.get("MEDGATE_FAKE_LOAD_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"{spec.name} {os.getpid()} {os.environ.get('PYTEST_XDIST_WORKER', 'main')}\n")

    def generate(
        self, chats: Sequence[Chat], params: GenParams | Sequence[GenParams], *, progress: ProgressFactory | None = None
    ) -> list[Completion]:
        bar = progress(total=len(chats)) if progress else None
        delay = float(os.environ.get("MEDGATE_FAKE_DELAY", "0"))
        doomed, _, count = os.environ.get("MEDGATE_FAKE_DIE_AFTER", "").partition(":")
        die_after = int(count) if doomed == self.spec.name else -1
        out = []
        for chat in chats:
            if delay:
                time.sleep(delay)
            if 0 <= die_after <= self.answered:
                raise EngineError(f"model {self.spec.name}: the engine died after {self.answered} answers")
            self.answered += 1
            prompt_tokens = sum(len(m["content"].split()) for m in chat)
            text = self.spec.fake_reply
            out.append(Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=len(text.split()), finish_reason="stop"))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return out

    def describe(self) -> dict[str, str]:
        return {"engine": "fake", "engine_version": "0", "device": "none"}

    def close(self) -> None:
        pass
