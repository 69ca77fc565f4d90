"""Where a model's files are, and a fingerprint of them that every report records.

The fingerprint is a SHA-256 over the names and bytes of the weight, config and tokenizer
files. Hashing a 70B checkpoint takes minutes, so digests are cached by (path, size, mtime).
A hub id that is not on disk is fingerprinted by id and revision.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from filelock import FileLock

from medgate.config import ModelSpec
from medgate.paths import cache_dir

_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.gguf", "config.json", "generation_config.json",
             "tokenizer*", "*.model", "*.tiktoken", "vocab*", "merges.txt", "special_tokens_map.json",
             "*.jinja")


def resolve_location(spec: ModelSpec) -> str:
    """The path or hub id that the engine loads; converts the embedded model on first use."""
    if spec.source == "embedded":
        from medgate.embedded import smollm2_checkpoint

        return str(smollm2_checkpoint())
    return spec.location


def model_files(folder: Path) -> list[Path]:
    files: set[Path] = set()
    for pattern in _PATTERNS:
        files.update(p for p in folder.glob(pattern) if p.is_file())
    return sorted(files)


def fingerprint(spec: ModelSpec, location: str) -> str:
    folder = Path(location)
    if not folder.is_dir():
        return f"hub:{location}@{spec.revision or 'unpinned'}"
    return folder_fingerprint(folder)


def folder_fingerprint(folder: Path) -> str:
    """SHA-256 of a model folder's files (also used for the BERTScore encoder)."""
    files = model_files(folder)
    if not files:
        return f"dir:{folder}(no model files)"
    stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    key = hashlib.sha256(json.dumps([str(folder.resolve()), stats]).encode()).hexdigest()
    store = cache_dir() / "fingerprints.json"
    with FileLock(str(store) + ".lock"):
        known = json.loads(store.read_text()) if store.exists() else {}
        if key in known:
            return str(known[key])
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
        value = "sha256:" + digest.hexdigest()[:20]
        known[key] = value
        tmp = store.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, store)
        return value
