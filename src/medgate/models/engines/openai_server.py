"""An OpenAI-compatible chat server as the engine: a vLLM server, or a cluster behind a load
balancer. Base URL and API key come from the environment (the variables models.toml names),
never from a file. Bounded concurrency, retries with exponential backoff, a timeout per request.
"""

from __future__ import annotations

import os
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from medgate.core.errors import EngineError
from medgate.core.types import Chat, Completion, GenParams
from medgate.models.engines.base import Backend, Option, ProgressFactory, per_chat
from medgate.models.spec import ModelSpec

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIServerEngine:
    def __init__(self, spec: ModelSpec, location: str) -> None:
        import httpx

        self.spec = spec
        self.opts = opts = BACKEND.settings(spec)
        base = os.environ.get(opts["base_url_env"], "").rstrip("/")
        if not base:
            raise EngineError(f"model {spec.name}: backend openai needs the server's base URL in ${opts['base_url_env']}")
        self.base_url = base if base.endswith("/v1") else base + "/v1"
        key = os.environ.get(opts["api_key_env"], "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.served_model = opts["served_model"] or location
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=opts["request_timeout"])
        self._httpx = httpx
        try:
            response = self.client.get("/models", timeout=min(30.0, opts["request_timeout"]))
        except httpx.HTTPError as exc:
            raise EngineError(f"model {spec.name}: server {self.base_url} is unreachable ({type(exc).__name__}: {exc})") from None
        if response.status_code in (401, 403):
            raise EngineError(f"model {spec.name}: server {self.base_url} refused the API key (HTTP {response.status_code})")
        if response.status_code != 200:
            raise EngineError(f"model {spec.name}: server {self.base_url}/models answered HTTP {response.status_code}")
        served = [m.get("id") for m in response.json().get("data", [])]
        if self.served_model not in served:
            raise EngineError(f"model {spec.name}: server {self.base_url} serves {served}, not {self.served_model!r}; "
                              f"set served_model in models.toml")

    def _request(self, chat: Chat, params: GenParams) -> Completion:
        body = {"model": self.served_model, "messages": [dict(m) for m in chat], "max_tokens": params.max_tokens,
                "temperature": params.temperature, "top_p": params.top_p, "seed": params.seed}
        if self.spec.chat_template:
            with open(self.spec.chat_template, encoding="utf-8") as handle:
                body["chat_template"] = handle.read()  # vLLM's server accepts a template per request
        delay = 1.0
        last = ""
        for attempt in range(self.opts["max_retries"] + 1):
            try:
                response = self.client.post("/chat/completions", json=body)
            except self._httpx.HTTPError as exc:  # timeouts and connection errors: worth another try
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    data = response.json()
                    choice, usage = data["choices"][0], data.get("usage") or {}
                    return Completion(text=choice["message"]["content"] or "", prompt_tokens=int(usage.get("prompt_tokens", 0)),
                                      completion_tokens=int(usage.get("completion_tokens", 0)),
                                      finish_reason=str(choice.get("finish_reason", "")))
                last = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code not in _RETRY_STATUS:
                    return Completion(text="", error=last)  # e.g. 400 for a prompt longer than the context
            if attempt < self.opts["max_retries"]:
                time.sleep(delay * (1 + random.random() / 4))
                delay *= 2
        return Completion(text="", error=f"gave up after {self.opts['max_retries'] + 1} attempts: {last}")

    def generate(self, chats: Sequence[Chat], params: GenParams | Sequence[GenParams], *,
                 progress: ProgressFactory | None = None) -> list[Completion]:
        bar = progress(total=len(chats)) if progress else None
        results: list[Any] = [None] * len(chats)
        settings = per_chat(params, len(chats))
        with ThreadPoolExecutor(max_workers=self.opts["concurrency"]) as pool:
            futures = {pool.submit(self._request, chat, p): i for i, (chat, p) in enumerate(zip(chats, settings))}
            for future, index in futures.items():
                results[index] = future.result()
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        return results

    def describe(self) -> dict[str, str]:
        return {"engine": "openai-server", "engine_version": "openai-compatible", "device": self.base_url}

    def close(self) -> None:
        self.client.close()


_ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")

BACKEND = Backend(
    name="openai",
    label="openai-server",
    options={
        # the variables holding the server's URL and key: never the values themselves
        "base_url_env": Option((str,), lambda v: bool(_ENV_RE.match(v)), "an environment variable name",
                               "MEDGATE_OPENAI_BASE_URL"),
        "api_key_env": Option((str,), lambda v: bool(_ENV_RE.match(v)), "an environment variable name",
                              "MEDGATE_OPENAI_API_KEY"),
        "served_model": Option((str,), lambda v: bool(v), "a non-empty model name", None),  # default: hub id or path
        "concurrency": Option((int,), lambda v: 1 <= v <= 1024, "an integer in [1, 1024]", 8),
        "request_timeout": Option((float, int), lambda v: v > 0, "a positive number of seconds", 300.0),
        "max_retries": Option((int,), lambda v: 0 <= v <= 20, "an integer in [0, 20]", 3),
    },
    create=OpenAIServerEngine,
    version=lambda: "openai-compatible",
    # the server's engine version is its own; the served model names it
    engine_id=lambda spec: f"openai:{BACKEND.settings(spec)['served_model'] or spec.location}",
)
