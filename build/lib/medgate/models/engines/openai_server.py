"""An OpenAI-compatible chat server as the engine: a vLLM server, a cluster behind a load
balancer, or several servers (one per node group: data parallel across groups). Base URLs
(comma-separated) and the API key come from the environment (the variables models.toml names),
never from a file. Requests are spread over the servers, at most ``concurrency`` in flight on
each; a failed attempt is retried on another server (with exponential backoff when there is
none), and each request has a timeout.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from medgate.core.errors import EngineError
from medgate.core.types import Chat, Completion, GenParams
from medgate.models.engines.base import Backend, Option, ProgressFactory, log_engine_event, per_chat
from medgate.models.spec import ModelSpec

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def base_urls(value: str) -> list[str]:
    """The servers of a comma-separated base-URL variable, each ending in /v1."""
    urls = [u.strip().rstrip("/") for u in value.split(",") if u.strip()]
    return [u if u.endswith("/v1") else u + "/v1" for u in urls]


class ServerSlots:
    """Which server takes the next attempt: the least busy one with a free slot, avoiding the one
    that just failed when another exists; ties rotate, so even strictly sequential requests
    alternate between servers."""

    def __init__(self, n_servers: int, per_server: int) -> None:
        self.in_flight = [0] * n_servers
        self.per_server = per_server
        self._turn = 0
        self._free = threading.Condition()

    def acquire(self, avoid: int | None = None) -> int:
        with self._free:
            while True:
                allowed = [i for i in range(len(self.in_flight)) if i != avoid] or [avoid or 0]
                free = [i for i in allowed if self.in_flight[i] < self.per_server]
                if free:
                    n = len(self.in_flight)
                    pick = min(free, key=lambda i: (self.in_flight[i], (i - self._turn) % n))
                    self._turn = (pick + 1) % n
                    self.in_flight[pick] += 1
                    return pick
                self._free.wait()

    def release(self, server: int) -> None:
        with self._free:
            self.in_flight[server] -= 1
            self._free.notify_all()


class OpenAIServerEngine:
    def __init__(self, spec: ModelSpec, location: str) -> None:
        import httpx

        self.spec = spec
        self.opts = opts = BACKEND.settings(spec)
        self.base_urls = base_urls(os.environ.get(opts["base_url_env"], ""))
        if not self.base_urls:
            raise EngineError(f"model {spec.name}: backend openai needs the server's base URL in ${opts['base_url_env']} "
                              f"(several servers: comma-separated)")
        key = os.environ.get(opts["api_key_env"], "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.served_model = opts["served_model"] or location
        self._httpx = httpx
        self.clients = [httpx.Client(base_url=url, headers=headers, timeout=opts["request_timeout"]) for url in self.base_urls]
        for url, client in zip(self.base_urls, self.clients):
            self._check(url, client)
        self.slots = ServerSlots(len(self.clients), opts["concurrency"])
        log_engine_event(spec, "load")

    def _check(self, url: str, client: Any) -> None:
        """Every server must answer, accept the key and serve the model before anything is sent."""
        name, httpx = self.spec.name, self._httpx
        try:
            response = client.get("/models", timeout=min(30.0, self.opts["request_timeout"]))
        except httpx.HTTPError as exc:
            raise EngineError(f"model {name}: server {url} is unreachable ({type(exc).__name__}: {exc})") from None
        if response.status_code in (401, 403):
            raise EngineError(f"model {name}: server {url} refused the API key (HTTP {response.status_code})")
        if response.status_code != 200:
            raise EngineError(f"model {name}: server {url}/models answered HTTP {response.status_code}")
        served = [m.get("id") for m in response.json().get("data", [])]
        if self.served_model not in served:
            raise EngineError(f"model {name}: server {url} serves {served}, not {self.served_model!r}; "
                              f"set served_model in models.toml")

    def _request(self, chat: Chat, params: GenParams) -> Completion:
        body = {"model": self.served_model, "messages": [dict(m) for m in chat], "max_tokens": params.max_tokens,
                "temperature": params.temperature, "top_p": params.top_p, "seed": params.seed}
        if self.spec.chat_template:
            with open(self.spec.chat_template, encoding="utf-8") as handle:
                body["chat_template"] = handle.read()  # vLLM's server accepts a template per request
        delay = 1.0
        last, failed_on = "", None
        for attempt in range(self.opts["max_retries"] + 1):
            server = self.slots.acquire(avoid=failed_on)
            try:
                response = self.clients[server].post("/chat/completions", json=body)
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
            finally:
                self.slots.release(server)
            failed_on = server
            if len(self.clients) > 1:
                last = f"{self.base_urls[server]}: {last}"  # say which server, when there are several
            # The next attempt goes to another server at once; once every server has failed, back off.
            if (attempt + 1) % len(self.clients) == 0 and attempt < self.opts["max_retries"]:
                time.sleep(delay * (1 + random.random() / 4))
                delay *= 2
        return Completion(text="", error=f"gave up after {self.opts['max_retries'] + 1} attempts: {last}")

    def generate(self, chats: Sequence[Chat], params: GenParams | Sequence[GenParams], *,
                 progress: ProgressFactory | None = None) -> list[Completion]:
        log_engine_event(self.spec, "generate", len(chats))
        bar = progress(total=len(chats)) if progress else None
        results: list[Any] = [None] * len(chats)
        settings = per_chat(params, len(chats))
        with ThreadPoolExecutor(max_workers=self.opts["concurrency"] * len(self.clients)) as pool:
            futures = {pool.submit(self._request, chat, p): i for i, (chat, p) in enumerate(zip(chats, settings))}
            for future, index in futures.items():
                results[index] = future.result()
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        return results

    def describe(self) -> dict[str, str]:
        # the servers, without any user:password@ a URL may carry: reports never hold credentials
        servers = ",".join(re.sub(r"//[^/@]*@", "//", url) for url in self.base_urls)
        return {"engine": "openai-server", "engine_version": "openai-compatible", "device": servers}

    def close(self) -> None:
        for client in self.clients:
            client.close()


_ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")

BACKEND = Backend(
    name="openai",
    label="openai-server",
    remote=True,
    options={
        # the variables holding the server's URL and key: never the values themselves
        "base_url_env": Option((str,), lambda v: bool(_ENV_RE.match(v)), "an environment variable name",
                               "MEDGATE_OPENAI_BASE_URL"),
        "api_key_env": Option((str,), lambda v: bool(_ENV_RE.match(v)), "an environment variable name",
                              "MEDGATE_OPENAI_API_KEY"),
        "served_model": Option((str,), lambda v: bool(v), "a non-empty model name", None),  # default: hub id or path
        "concurrency": Option((int,), lambda v: 1 <= v <= 1024, "an integer in [1, 1024]", 8),  # per server
        "request_timeout": Option((float, int), lambda v: v > 0, "a positive number of seconds", 300.0),
        "max_retries": Option((int,), lambda v: 0 <= v <= 20, "an integer in [0, 20]", 3),
    },
    create=OpenAIServerEngine,
    version=lambda: "openai-compatible",
    # the server's engine version is its own; the served model names it
    engine_id=lambda spec: f"openai:{BACKEND.settings(spec)['served_model'] or spec.location}",
)
