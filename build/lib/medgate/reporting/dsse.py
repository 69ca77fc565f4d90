"""DSSE v1.0.2 envelopes (github.com/secure-systems-lab/dsse, protocol.md and envelope.md) with
Ed25519 keys, through the ``cryptography`` package.

Why ``cryptography`` and not securesystemslib: Ed25519 signing and PEM key loading are all the
envelope needs, and ``cryptography`` is the primitive library securesystemslib itself builds on.
The DSSE layer is the pre-authentication encoding plus base64, a few lines tested against the
spec's own test vector; taking securesystemslib for it would add a dependency and its own key id
scheme (a hash of a TUF key dict) that no other tool here reads. Keyless signing belongs to
Sigstore in CI (README, "The release record"), not to this module.

The key id is the sha256 (hex) of the public key's 32 raw bytes. DSSE makes it an unauthenticated
hint: verification never trusts it, it only says which key a signer used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import Any, Mapping

from medgate.core.errors import ConfigError

PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, body: bytes) -> bytes:
    """PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, LEN the decimal byte
    length: what is signed, so the payload type is authenticated with the body."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not: DSSE verifiers must accept either."""
    data = text.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)


# -- keys ---------------------------------------------------------------------------------------


def load_private_key(path: Path) -> Any:
    """An Ed25519 private key from a PEM file (PKCS#8, unencrypted)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: the signing key must be Ed25519, not {type(key).__name__}")
    return key


def load_public_key(path: Path) -> Any:
    """An Ed25519 public key from a PEM file (SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not a readable PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: the public key must be Ed25519, not {type(key).__name__}")
    return key


def keyid(public_key: Any) -> str:
    """sha256 (hex) of the Ed25519 public key's 32 raw bytes."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


# -- envelopes ----------------------------------------------------------------------------------


def envelope(body: bytes, private_key: Any = None, payload_type: str = PAYLOAD_TYPE) -> dict[str, Any]:
    """The JSON envelope of ``body``: signed over PAE when a private key is given, else with an
    empty ``signatures`` list (DSSE requires the field, even empty)."""
    signatures = []
    if private_key is not None:
        signature = private_key.sign(pae(payload_type, body))
        signatures.append({"keyid": keyid(private_key.public_key()), "sig": base64.b64encode(signature).decode()})
    return {"payload": base64.b64encode(body).decode(), "payloadType": payload_type, "signatures": signatures}


def open_envelope(data: Mapping[str, Any]) -> tuple[str, bytes]:
    """(payload type, payload bytes); ValueError when a required field is missing or undecodable."""
    for name in ("payload", "payloadType", "signatures"):
        if name not in data:
            raise ValueError(f"the envelope has no {name!r}")
    if not isinstance(data["signatures"], list):
        raise ValueError("'signatures' is not a list")
    try:
        return str(data["payloadType"]), b64decode(str(data["payload"]))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the payload is not base64 ({exc})") from None


def check_signatures(data: Mapping[str, Any], public_key: Any) -> tuple[bool | None, str]:
    """Whether some signature of the envelope verifies with ``public_key`` over PAE of the exact
    payload bytes. None when the envelope has no signature at all (unsigned)."""
    from cryptography.exceptions import InvalidSignature

    payload_type, body = open_envelope(data)
    signatures = data["signatures"]
    if not signatures:
        return None, "unsigned (the envelope has no signature)"
    message = pae(payload_type, body)
    wanted = keyid(public_key)
    for entry in signatures:
        try:
            public_key.verify(b64decode(str(entry.get("sig", ""))), message)
        except (InvalidSignature, binascii.Error, ValueError):
            continue
        return True, f"Ed25519 signature by key {wanted[:16]} verifies"
    ids = ", ".join(str(s.get("keyid", "?"))[:16] for s in signatures)
    return False, f"no signature verifies with key {wanted[:16]} (signed by key {ids})"
