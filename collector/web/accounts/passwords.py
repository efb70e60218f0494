"""Password hashing with argon2id (argon2-cffi), and passwords made for people.

The hash string carries its own parameters, so a hash made with other settings (cheaper ones
in tests, stronger ones later) still verifies, and `needs_rehash` says when to upgrade it at
the next successful login.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; a cap keeps a huge POST from costing much


class Passwords:
    """`hash` / `verify` / `needs_rehash` over one PasswordHasher (RFC 9106 defaults)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None  # made on first need: building an app stays cheap

    def hash(self, password: str) -> str:
        check_password(password)
        return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Does `password` match `stored`? A missing or malformed hash never matches."""
        if len(password) > MAX_LENGTH:
            return False
        if stored is None:  # an unknown name costs what a wrong password does
            self._dummy = self._dummy or self.hasher.hash(secrets.token_urlsafe(16))
        try:
            return self.hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True


def check_password(password: str) -> None:
    """ValueError with a message for a password not worth storing."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"a password may have at most {MAX_LENGTH} characters")
    if "\x00" in password:
        raise ValueError("a password must not contain NUL characters")


def generate_password() -> str:
    """A password for a first admin (about 120 bits), easy to copy from a file."""
    return secrets.token_urlsafe(15)

