"""Small file helpers used across layers: one atomic write, one file hash, one name check."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from medgate.core.errors import ConfigError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
NAME_CHARS = "letters, digits, '.', '_' and '-'"


def atomic_write(path: Path, data: str | bytes) -> Path:
    """Write a file so that readers (and other xdist workers) see the old or the new content,
    never a half-written one: a temporary file beside it, then one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data, encoding="utf-8")
    os.replace(tmp, path)
    return path


def file_digest(path: Path) -> str:
    """The full sha256 (64 hex digits) of a file's bytes, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def short_hash(hex_digest: str, length: int = 20) -> str:
    """medgate's dataset hash: ``sha256:<first length hex digits>``."""
    return "sha256:" + hex_digest[:length]


def file_sha256(path: Path, *, length: int = 20) -> str:
    """``sha256:<first length hex digits>`` of a file's bytes."""
    return short_hash(file_digest(path), length)


def is_safe_name(name: str) -> bool:
    """A name that is also a safe file or folder name (models, baselines)."""
    return bool(_NAME_RE.match(name))


def check_name(name: str, what: str) -> str:
    if not is_safe_name(name):
        raise ConfigError(f"{what} {name!r}: use {NAME_CHARS} only")
    return name
