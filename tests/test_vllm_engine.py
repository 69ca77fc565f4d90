"""The vLLM backend's own logic, with stand-ins for vllm.LLM and its tokenizer (the real engine
runs in tests/test_e2e_vllm.py): a prompt longer than the context is refused per item, the others
run, and an answer near the end of the context is shortened instead of failing."""

from __future__ import annotations

from types import SimpleNamespace

from medgate.core.types import GenParams
from medgate.models.engines.vllm_offline import VllmEngine
from medgate.models.spec import ModelSpec


class Tokenizer:
    def apply_chat_template(self, chat, tokenize, add_generation_prompt, chat_template):
        return list(range(sum(len(m["content"].split()) for m in chat)))  # a token per word


class LLM:
    def __init__(self):
        self.calls = []

    def chat(self, chats, sampling, **kwargs):
        self.calls.append((chats, sampling))
        return [SimpleNamespace(prompt_token_ids=[0] * 3, outputs=[SimpleNamespace(text="ok", token_ids=[1], finish_reason="stop")])
                for _ in chats]


def engine(max_model_len: int) -> VllmEngine:
    e = object.__new__(VllmEngine)  # no real engine: the checks around it are what is tested
    e.spec = ModelSpec(name="m", source="path", location=".", max_model_len=max_model_len)
    e.chat_template, e.tokenizer, e.llm = None, Tokenizer(), LLM()
    e._vllm = SimpleNamespace(SamplingParams=lambda **kw: kw)
    return e


def chat(words: int):
    return [{"role": "user", "content": " ".join(["w"] * words)}]


def test_a_prompt_longer_than_the_context_is_an_error_of_that_item_only():
    e = engine(10)
    out = e.generate([chat(3), chat(10), chat(12), chat(4)], GenParams(max_tokens=5))
    assert [c.error for c in out] == [None, "prompt of 10 tokens does not fit the context of 10 tokens",
                                      "prompt of 12 tokens does not fit the context of 10 tokens", None]
    assert [c.text for c in out] == ["ok", "", "", "ok"]
    (chats, sampling), = e.llm.calls
    assert len(chats) == 2  # only the items that fit went to the engine
    assert [s["max_tokens"] for s in sampling] == [5, 5]  # both leave room for the whole answer


def test_the_answer_is_cut_to_what_the_context_leaves():
    e = engine(8)
    e.generate([chat(5)], GenParams(max_tokens=5))
    (_, sampling), = e.llm.calls
    assert sampling[0]["max_tokens"] == 3
