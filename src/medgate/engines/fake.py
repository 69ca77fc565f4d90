"""A fake engine for testing the plumbing (scheduling, reporting) without a model.

It answers every chat with the model's ``fake_reply``. When ``MEDGATE_FAKE_LOAD_LOG`` names a
file, each load appends a line "<model> <pid>" so tests can count engine loads across workers.
"""

from __future__ import annotations

import os
from typing import Sequence

from medgate.config import ModelSpec
from medgate.engines.base import ProgressFactory
from medgate.types import Chat, Completion, GenParams


class FakeEngine:
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        log = os.environ.get("MEDGATE_FAKE_LOAD_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"{spec.name} {os.getpid()} {os.environ.get('PYTEST_XDIST_WORKER', 'main')}\n")

    def generate(
        self, chats: Sequence[Chat], params: GenParams, *, progress: ProgressFactory | None = None
    ) -> list[Completion]:
        bar = progress(total=len(chats)) if progress else None
        out = []
        for chat in chats:
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
