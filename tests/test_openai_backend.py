"""The OpenAI-compatible backend: retry and error logic against a small HTTP stub on loopback,
and the real thing against a vLLM server that the test starts on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from medgate.core.errors import EngineError
from medgate.core.types import GenParams
from medgate.models.engines.openai_server import OpenAIServerEngine
from medgate.models.spec import ModelSpec
from tests.conftest import FIXTURES, REPO, outcomes, write_models


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stub(BaseHTTPRequestHandler):
    """Serves model "m"; fails the first `failures` chat requests with 503; answers 400 to a
    prompt containing TOO_LONG. Records the Authorization headers it saw."""

    failures = 0
    seen_auth: list[str] = []

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        Stub.seen_auth.append(self.headers.get("Authorization", ""))
        self._send(200, {"data": [{"id": "m"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if "TOO_LONG" in body["messages"][-1]["content"]:
            return self._send(400, {"error": "prompt longer than the context"})
        if Stub.failures > 0:
            Stub.failures -= 1
            return self._send(503, {"error": "busy"})
        self._send(200, {"choices": [{"message": {"content": "ENTAILMENT"}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 11, "completion_tokens": 2}})


@pytest.fixture
def stub(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("MEDGATE_OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("MEDGATE_OPENAI_API_KEY", "sk-test-secret")
    Stub.failures, Stub.seen_auth = 0, []
    yield server
    server.shutdown()


def spec(**options) -> ModelSpec:
    return ModelSpec(name="srv", source="hub", location="m", backend="openai",
                     options={"max_retries": 3, "concurrency": 4, **options})


def chat(text: str):
    return [{"role": "user", "content": text}]


def test_answers_in_order_with_token_counts_and_the_key_from_the_environment(stub):
    engine = OpenAIServerEngine(spec(), "m")
    out = engine.generate([chat(f"q{i}") for i in range(10)], GenParams(max_tokens=5))
    assert [c.text for c in out] == ["ENTAILMENT"] * 10
    assert (out[0].prompt_tokens, out[0].completion_tokens) == (11, 2)
    assert Stub.seen_auth == ["Bearer sk-test-secret"]


def test_retries_with_backoff_then_succeeds(stub, monkeypatch):
    monkeypatch.setattr("medgate.models.engines.openai_server.time.sleep", lambda s: None)
    Stub.failures = 2
    (answer,) = OpenAIServerEngine(spec(), "m").generate([chat("q")], GenParams(max_tokens=5))
    assert answer.text == "ENTAILMENT" and answer.error is None


def test_gives_up_after_max_retries_and_does_not_retry_a_bad_request(stub, monkeypatch):
    monkeypatch.setattr("medgate.models.engines.openai_server.time.sleep", lambda s: None)
    Stub.failures = 10
    (busy,) = OpenAIServerEngine(spec(max_retries=2), "m").generate([chat("q")], GenParams(max_tokens=5))
    assert busy.error.startswith("gave up after 3 attempts: HTTP 503")
    assert Stub.failures == 7  # exactly 3 attempts
    Stub.failures = 0
    (long,) = OpenAIServerEngine(spec(), "m").generate([chat("TOO_LONG")], GenParams(max_tokens=5))
    assert long.error.startswith("HTTP 400") and "longer than the context" in long.error


def test_unreachable_server_and_unknown_model_are_clear_errors(stub, monkeypatch):
    with pytest.raises(EngineError, match="serves \\['m'\\], not 'other'"):
        OpenAIServerEngine(spec(served_model="other"), "m")
    monkeypatch.setenv("MEDGATE_OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(EngineError, match="is unreachable"):
        OpenAIServerEngine(spec(), "m")
    monkeypatch.delenv("MEDGATE_OPENAI_BASE_URL")
    with pytest.raises(EngineError, match=r"needs the server's base URL in \$MEDGATE_OPENAI_BASE_URL"):
        OpenAIServerEngine(spec(), "m")


class Replica(BaseHTTPRequestHandler):
    """One of several servers: counts its chat requests and the most it had in flight at once;
    answers 503 to every chat when ``down``, and takes ``delay`` seconds per chat."""

    state: dict  # set per server by `replica`

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, {"data": [{"id": "m"}]})

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        state = self.state
        with state["lock"]:
            state["count"] += 1
            state["in_flight"] += 1
            state["peak"] = max(state["peak"], state["in_flight"])
        try:
            threading.Event().wait(state["delay"])  # not time.sleep, which some tests replace
            if state["down"]:
                return self._send(503, {"error": "draining"})
            self._send(200, {"choices": [{"message": {"content": state["name"]}, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
        finally:
            with state["lock"]:
                state["in_flight"] -= 1


@pytest.fixture
def replicas():
    servers = []

    def replica(name: str, *, delay: float = 0.0, down: bool = False) -> dict:
        state = {"name": name, "delay": delay, "down": down, "count": 0, "in_flight": 0, "peak": 0,
                 "lock": threading.Lock()}
        server = ThreadingHTTPServer(("127.0.0.1", 0), type(f"Replica_{name}", (Replica,), {"state": state}))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
        return state

    yield replica
    for server in servers:
        server.shutdown()


def test_requests_spread_over_several_servers_with_a_bound_per_server(replicas, monkeypatch):
    slow, fast = replicas("slow", delay=0.3), replicas("fast")
    monkeypatch.setenv("MEDGATE_OPENAI_BASE_URL", f"{slow['url']}, {fast['url']}/v1/")  # comma-separated, any form
    engine = OpenAIServerEngine(spec(concurrency=2), "m")
    out = engine.generate([chat(f"q{i}") for i in range(20)], GenParams(max_tokens=5))
    assert all(c.error is None for c in out) and slow["count"] + fast["count"] == 20
    assert slow["count"] >= 1 and fast["count"] >= 1
    # four threads in all, never more than two on one server (plain round-robin piles up on the slow one)
    assert slow["peak"] <= 2 and fast["peak"] <= 2
    assert engine.describe()["device"] == f"{slow['url']}/v1,{fast['url']}/v1"
    monkeypatch.setenv("MEDGATE_OPENAI_BASE_URL", slow["url"].replace("//", "//user:sk-in-url@"))
    assert OpenAIServerEngine(spec(), "m").describe()["device"] == f"{slow['url']}/v1"  # no credentials in reports


def test_a_failed_attempt_is_retried_on_another_server_without_backoff(replicas, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr("medgate.models.engines.openai_server.time.sleep", sleeps.append)
    down, up = replicas("down", down=True), replicas("up")
    monkeypatch.setenv("MEDGATE_OPENAI_BASE_URL", f"{down['url']},{up['url']}")
    out = OpenAIServerEngine(spec(concurrency=1, max_retries=1), "m").generate([chat(f"q{i}") for i in range(6)],
                                                                               GenParams(max_tokens=5))
    assert [c.text for c in out] == ["up"] * 6
    assert down["count"] >= 1 and sleeps == []  # some first attempts hit the draining server; none waited
    down["down"], up["down"] = True, True  # both draining: every server tried, then backoff, then give up
    (failed,) = OpenAIServerEngine(spec(concurrency=1, max_retries=3), "m").generate([chat("q")], GenParams(max_tokens=5))
    assert failed.error.startswith("gave up after 4 attempts: http://127.0.0.1:") and "HTTP 503" in failed.error
    assert len(sleeps) == 1  # one backoff after both servers failed once; the last round gives up instead


def test_every_listed_server_is_checked_before_anything_is_sent(replicas, monkeypatch):
    up = replicas("up")
    gone = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MEDGATE_OPENAI_BASE_URL", f"{up['url']},{gone}")
    with pytest.raises(EngineError, match=rf"model srv: server {gone}/v1 is unreachable"):
        OpenAIServerEngine(spec(), "m")
    assert up["count"] == 0


def start_vllm_server(checkpoint, log) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(checkpoint),
             "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "4096", "--enforce-eager", "--seed", "0"],
            stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True,  # its own group: killed whole
        )
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def vllm_servers(tmp_path_factory):
    """Two real vLLM OpenAI-compatible servers on loopback, serving the embedded model (started together)."""
    from medgate.models.embedded import smollm2_checkpoint

    checkpoint = smollm2_checkpoint()
    folder = tmp_path_factory.mktemp("servers")
    started = [start_vllm_server(checkpoint, folder / f"server{i}.log") for i in range(2)]
    try:
        deadline = time.monotonic() + 600
        for i, (proc, url) in enumerate(started):
            while True:
                assert proc.poll() is None, (folder / f"server{i}.log").read_text()[-3000:]
                if time.monotonic() > deadline:
                    pytest.fail("vLLM server did not start in 600 s:\n" + (folder / f"server{i}.log").read_text()[-3000:])
                try:
                    if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(2)
        yield [url for _, url in started], checkpoint
    finally:
        for proc, _ in started:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in started:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def vllm_server(vllm_servers):
    (first, _), checkpoint = vllm_servers
    return first, checkpoint


def served_requests(url: str) -> float:
    """Successful requests a vLLM server has finished, from its Prometheus metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("vllm:request_success_total"))


def test_mednli_through_a_real_vllm_server(pytester, vllm_server, tmp_path, monkeypatch):
    url, checkpoint = vllm_server
    monkeypatch.setenv("MEDGATE_OPENAI_BASE_URL", url)
    models = write_models(tmp_path / "models.toml", f"""
        [models.served]
        path = "{checkpoint}"
        backend = "openai"
        concurrency = 4
        max_model_len = 4096
        [models.served.thresholds]
        mednli = {{ no_label_rate = 0.5 }}
        """)
    pytester.mkdir("tests_medical")
    (pytester.path / "tests_medical" / "test_mednli.py").write_text((REPO / "tests_medical" / "test_mednli.py").read_text())
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--models-file={models}", f"--data-dir={FIXTURES}",
        f"--reports-dir={pytester.path / 'reports'}", "tests_medical", "--model", "served", "--limit", "12",
    )
    result.assert_outcomes(passed=1, skipped=1)
    found = {o["metric"]: o for o in outcomes(pytester.path / "reports")}
    prov = found["accuracy"]["provenance"]
    assert prov["engine"] == "openai-server" and prov["device"] == f"{url}/v1"
    assert prov["n_items"] == 12 and prov["completion_tokens"] > 0
    assert 0.0 <= found["accuracy"]["value"] <= 1.0


def test_mednli_spread_over_two_real_vllm_servers(pytester, vllm_servers, tmp_path, monkeypatch):
    """Data parallel across node groups: one medgate run, two servers, each answering part of the prompts."""
    urls, checkpoint = vllm_servers
    before = [served_requests(url) for url in urls]
    monkeypatch.setenv("MEDGATE_OPENAI_BASE_URL", ",".join(urls))
    models = write_models(tmp_path / "models.toml", f"""
        [models.served]
        path = "{checkpoint}"
        backend = "openai"
        concurrency = 2
        max_model_len = 4096
        [models.served.thresholds]
        mednli = {{ no_label_rate = 0.5 }}
        """)
    pytester.mkdir("tests_medical")
    (pytester.path / "tests_medical" / "test_mednli.py").write_text((REPO / "tests_medical" / "test_mednli.py").read_text())
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--models-file={models}", f"--data-dir={FIXTURES}",
        f"--reports-dir={pytester.path / 'reports'}", "tests_medical", "--model", "served", "--limit", "12",
    )
    result.assert_outcomes(passed=1, skipped=1)
    served = [served_requests(url) - b for url, b in zip(urls, before)]
    assert sum(served) == 12 and min(served) >= 1, served  # every prompt once, both servers used
    prov = outcomes(pytester.path / "reports")[0]["provenance"]
    assert prov["device"] == ",".join(f"{url}/v1" for url in urls)
