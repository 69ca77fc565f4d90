"""Where medgate keeps things on disk."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # src/medgate
SOURCE_ROOT = PACKAGE_ROOT.parent.parent  # the repository, for an editable install (models.toml, fixtures/, tools/)


def cache_dir() -> Path:
    """Cache for converted models and fingerprints: ``$MEDGATE_CACHE`` or ``~/.cache/medgate``."""
    configured = os.environ.get("MEDGATE_CACHE")
    root = Path(configured) if configured else Path.home() / ".cache" / "medgate"
    root.mkdir(parents=True, exist_ok=True)
    return root


def generations_db() -> Path:
    """The generation cache: ``$MEDGATE_GENERATIONS`` or ``<cache_dir>/generations.sqlite``."""
    configured = os.environ.get("MEDGATE_GENERATIONS")
    return Path(configured) if configured else cache_dir() / "generations.sqlite"
