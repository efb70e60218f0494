"""One-time enrollment tokens. Pure: randomness and hashing only, no storage or clock.

A token is high-entropy (32 random bytes), so one round of SHA-256 is enough to store it: the
database never holds a token that could be replayed, and a slow hash would buy nothing
against guessing 256 bits. Tokens carry a prefix so they are recognisable in logs and secret
scanners, and are never logged themselves.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "fwe_"
TOKEN_BYTES = 32
MAX_LEN = 128  # anything longer is not one of ours; refused before hashing


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def well_formed(token: object) -> bool:
    return isinstance(token, str) and token.startswith(PREFIX) and 8 < len(token) <= MAX_LEN


def new_password() -> str:
    """A broker password: 32 random bytes, URL-safe so it survives any config format."""
    return secrets.token_urlsafe(TOKEN_BYTES)
