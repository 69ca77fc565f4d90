"""The engine interface: a batch of chats in, texts and token counts out."""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

from medgate.types import Chat, Completion, GenParams

# A tqdm-like factory (vLLM accepts one for its progress bar); None shows no bar.
ProgressFactory = Callable[..., Any]


class Engine(Protocol):
    """A loaded model. Backends: vllm_offline (vllm.LLM), fake (tests of the plumbing)."""

    def generate(
        self, chats: Sequence[Chat], params: GenParams | Sequence[GenParams], *, progress: ProgressFactory | None = None
    ) -> list[Completion]:
        """Answer every chat, in order; ``params`` is one setting for all or one per chat (so the
        tasks of a model, with their own answer lengths, go in one batch). An item that cannot run
        gets a Completion with ``error``."""
        ...

    def describe(self) -> dict[str, str]:
        """Engine name, version and device, for reports."""
        ...

    def close(self) -> None:
        """Free the model's memory."""
        ...


def per_chat(params: GenParams | Sequence[GenParams], n: int) -> list[GenParams]:
    """One GenParams per chat."""
    if isinstance(params, GenParams):
        return [params] * n
    listed = list(params)
    if len(listed) != n:
        raise ValueError(f"{len(listed)} decoding settings for {n} chats")
    return listed
