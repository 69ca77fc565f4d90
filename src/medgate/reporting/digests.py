"""The digests the release record commits to: canonical JSON, a model folder's files, the pass
criteria, the item ids and a Merkle tree over the per-item scores. Plain functions: the writer
and ``medgate verify`` compute each one the same way, so a recomputed digest either matches or
names what changed.

Canonical JSON here means ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)`` encoded as UTF-8: keys sorted, no spaces, floats written
as Python's shortest round-trip ``repr`` (``0.1`` stays ``0.1``), integers as integers (``1`` and
``1.0`` differ), non-finite floats as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from medgate.core.fingerprint import model_files
from medgate.core.io import file_digest

LEAF_PREFIX = b"\x00"  # RFC 6962 section 2.1: leaves and inner nodes hash with different prefixes,
NODE_PREFIX = b"\x01"  # so no leaf can pose as a node (second-preimage attacks on the tree)


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats spelled as strings (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def canonical_json(value: Any) -> bytes:
    """The one byte form every digest here is taken over (see the module docstring)."""
    return json.dumps(_finite(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def criteria_digest(criteria: Mapping[str, Any]) -> str:
    """sha256 of the resolved pass criteria of one model (thresholds, margins, tolerances,
    expected failures, gate_on, tolerance, regression, inconclusive, alpha), canonical JSON."""
    return sha256_hex(canonical_json(criteria))


def ids_digest(ids: Sequence[str]) -> str:
    """sha256 of the sorted item ids as a canonical JSON list: which items were scored,
    without naming them."""
    return sha256_hex(canonical_json(sorted(ids)))


# -- the per-item scores' Merkle tree -----------------------------------------------------------


def leaf_bytes(item: Mapping[str, Any]) -> bytes:
    """One leaf: canonical JSON of ``{"id": ..., "scores": {...}}`` (any other key is ignored)."""
    return canonical_json({"id": str(item["id"]), "scores": dict(item.get("scores") or {})})


def _tree_hash(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962's Merkle Tree Hash: MTH({d0}) = SHA-256(0x00 || d0); for n > 1, split at k, the
    largest power of two below n: MTH(D) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))."""
    if len(leaves) == 1:
        return hashlib.sha256(LEAF_PREFIX + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(NODE_PREFIX + _tree_hash(leaves[:k]) + _tree_hash(leaves[k:])).digest()


def merkle_root(items: Sequence[Mapping[str, Any]]) -> str:
    """Hex root of the RFC 6962 tree over the items' leaves, sorted by id (then by leaf bytes,
    should ids repeat), so the order the run scored them in does not matter. No items: the
    sha256 of the empty string, as RFC 6962 defines the empty tree."""
    leaves = sorted((str(item["id"]), leaf_bytes(item)) for item in items)
    if not leaves:
        return sha256_hex(b"")
    return _tree_hash([leaf for _, leaf in leaves]).hex()


# -- model weights ------------------------------------------------------------------------------


def weights_digest(folder: Path) -> dict[str, Any]:
    """The checkpoint's files (weights, config, tokenizer, chat template: the same file patterns
    as medgate's model fingerprint, top level only, so caches and lock files stay out), each with
    its sha256, and one digest over them: sha256 of the canonical JSON list of [name, sha256]
    pairs sorted by name. A folder without model files has no digest and says why."""
    files = [{"name": path.name, "digest": {"sha256": file_digest(path)}, "size": path.stat().st_size}
             for path in model_files(folder)]
    if not files:
        return {"hashed": False, "reason": f"no model files (weights, config, tokenizer) in {folder.name}"}
    pairs = [[f["name"], f["digest"]["sha256"]] for f in files]
    return {"hashed": True, "digest": {"sha256": sha256_hex(canonical_json(sorted(pairs)))}, "files": files}


def unhashed_weights(reason: str, identity: str) -> dict[str, Any]:
    """A model whose weights cannot be read here (a server model): its identity, and why."""
    return {"hashed": False, "reason": reason, "identity": identity}


# -- nothing private: URLs without credentials --------------------------------------------------

_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s,;\"'<>]+")


def strip_url(url: str) -> str:
    """A URL without user:password@ and without its query and fragment (API keys travel there)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return re.sub(r"//[^/@]*@", "//", url.split("?", 1)[0].split("#", 1)[0])
    netloc = host if ":" not in host else f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def strip_urls(text: str) -> str:
    """Every URL inside ``text`` stripped (a device string may list several servers)."""
    return _URL_RE.sub(lambda m: strip_url(m.group(0)), text)


def scrub(value: Any) -> Any:
    """``value`` with every URL in every string stripped: the last guard before signing."""
    if isinstance(value, str):
        return strip_urls(value) if "://" in value else value
    if isinstance(value, Mapping):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value
