"""Where a model's files are, and the fingerprint of them that every report records. A hub id
that is not on disk is fingerprinted by id and revision."""

from __future__ import annotations

from pathlib import Path

from medgate.core.fingerprint import folder_fingerprint
from medgate.models.spec import ModelSpec


def resolve_location(spec: ModelSpec) -> str:
    """The path or hub id that the engine loads; converts the embedded model on first use."""
    if spec.source == "embedded":
        from medgate.models.embedded import smollm2_checkpoint

        return str(smollm2_checkpoint())
    return spec.location


def fingerprint(spec: ModelSpec, location: str) -> str:
    folder = Path(location)
    if not folder.is_dir():
        return f"hub:{location}@{spec.revision or 'unpinned'}"
    return folder_fingerprint(folder)
