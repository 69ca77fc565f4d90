"""A fingerprint of a model folder (weights, config, tokenizer): a SHA-256 over the files' names
and bytes. Used for the model under test and for the BERTScore encoder. Hashing a 70B checkpoint
takes minutes, so digests are cached by (path, size, mtime) under the cache folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from filelock import FileLock

from medgate.core.io import atomic_write
from medgate.core.paths import cache_dir

_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.gguf", "config.json", "generation_config.json",
             "tokenizer*", "*.model", "*.tiktoken", "vocab*", "merges.txt", "special_tokens_map.json",
             "*.jinja")


def model_files(folder: Path) -> list[Path]:
    files: set[Path] = set()
    for pattern in _PATTERNS:
        files.update(p for p in folder.glob(pattern) if p.is_file())
    return sorted(files)


def folder_fingerprint(folder: Path) -> str:
    """SHA-256 of a model folder's files, cached by their paths, sizes and modification times."""
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
        atomic_write(store, json.dumps(known, indent=1))
        return value
