"""Keep credentials out of every text medgate writes for CI (step summary, workflow commands,
pull-request comment, metrics): a URL's user:password@, well-known token shapes, and the values
of secret-looking environment variables."""

from __future__ import annotations

import os
import re
from typing import Mapping

MASK = "***"
_USERINFO = re.compile(r"(?<=//)[^/@\s]+@")
# GitHub, GitLab, Hugging Face, OpenAI-style keys and bearer tokens
_TOKENS = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}|"
                     r"hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,})|(?<=Bearer )[A-Za-z0-9._~+/=-]{8,}")
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|CREDENTIAL|PRIVATE_KEY|AUTH", re.IGNORECASE)
_MIN_SECRET = 6  # shorter values ("1", "true") would mask ordinary words


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """Values of variables whose names say they hold a secret, longest first."""
    found = {v for k, v in environ.items() if _SECRET_NAME.search(k) and len(v) >= _MIN_SECRET}
    return sorted(found, key=len, reverse=True)


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with credentials replaced by ***."""
    for value in secret_values(os.environ if environ is None else environ):
        text = text.replace(value, MASK)
    text = _USERINFO.sub("", text)
    return _TOKENS.sub(MASK, text)
