"""Console accounts: password hashes (scrypt) and bearer tokens for human agents."""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["DUMMY_HASH", "hash_password", "verify_password"]

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The stored form of a console password: `scrypt$<salt hex>$<hash hex>`."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (`scrypt$salt$hash` or `sha256$<hex>`)."""
    kind, _, rest = stored.partition("$")
    if kind == "scrypt":
        salt_hex, _, want = rest.partition("$")
        got = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt_hex), n=_N, r=_R, p=_P, dklen=32
        ).hex()
        return hmac.compare_digest(got, want)
    if kind == "sha256":
        return hmac.compare_digest(hashlib.sha256(password.encode()).hexdigest(), rest)
    raise ValueError(f"unknown password hash kind {kind!r}; kinds: scrypt, sha256")


DUMMY_HASH = hash_password("unused", salt=b"glm-agent-dummy!")
"""Checked for unknown usernames, so a login takes as long whether the user exists or not."""
