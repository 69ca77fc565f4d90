"""Which data files are medgate's own synthetic data: those whose full sha256 is in the manifest
shipped with the package (written by scripts/build_fixtures.py). Only they are attached to
reports with every prompt and output by default; any other file may hold patient text, wherever
it lives and whatever its folder is called."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from medgate.core.io import file_digest

MANIFEST = Path(__file__).resolve().parent.parent / "data" / "synthetic.sha256"


@lru_cache(maxsize=1)
def shipped_digests() -> frozenset[str]:
    """The digests in the manifest ("<sha256>  <name>" lines, as sha256sum writes them)."""
    if not MANIFEST.is_file():
        return frozenset()
    lines = MANIFEST.read_text(encoding="utf-8").splitlines()
    return frozenset(line.split()[0] for line in lines if line.strip() and not line.startswith("#"))


def data_source(hex_digest: str) -> str:
    """"synthetic" for a file medgate ships (by its full sha256, not by name or folder), else "user"."""
    return "synthetic" if hex_digest in shipped_digests() else "user"


def manifest_text(files: list[Path]) -> str:
    lines = ["# sha256 of the synthetic data files medgate ships (scripts/build_fixtures.py writes this)"]
    lines += [f"{file_digest(p)}  {p.name}" for p in sorted(files, key=lambda p: p.name)]
    return "\n".join(lines) + "\n"
