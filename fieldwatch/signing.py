"""Ed25519 keys and signatures for diagnostic requests (DESIGN §7).

The collector holds the private key and signs every request; agents hold the public key and
refuse anything not signed by it, so a broker account alone cannot command an agent. A key is
named by its id (the first 16 hex digits of the SHA-256 of its raw public bytes), which lets
agents trust a new key next to the old one while keys rotate.

Agents hold public keys as their 32 raw bytes, read from PEM without `cryptography` (RFC 8410
fixes the encoding); the library is imported on the first signature to check, so an agent that
never receives a request never pays its ~6 MB (issue 3).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from fieldwatch import wire
from fieldwatch.errors import ConfigError, DiagnosticRefused, Problem

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

# SubjectPublicKeyInfo of an Ed25519 key (RFC 8410 §4): this DER prefix, then the 32 key bytes
_SPKI_ED25519 = bytes.fromhex("302a300506032b6570032100")
_PEM_PUBLIC = ("-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----")


def key_id(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).hexdigest()[:16]


def public_bytes(public: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key object."""
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def generate(out_dir: Path, name: str = "diag-collector", force: bool = False) -> tuple[Path, Path]:
    """Write `<name>.key` (PKCS#8 PEM, mode 0600) and `<name>.pub` (PEM); refuse to overwrite."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    out_dir.mkdir(parents=True, exist_ok=True)
    key_path, pub_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    if not force and (key_path.exists() or pub_path.exists()):
        raise ConfigError([Problem(str(key_path), 0, 0,
                                   "a key already exists here; pass --force to replace it")])
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(key_path, 0o600)
    pub_path.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_path, pub_path


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem(str(path), 0, 0, f"cannot read key: {exc.strerror}")]) from None


def load_private(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError([Problem(str(path), 0, 0, f"not a PEM private key: {exc}")]) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError([Problem(str(path), 0, 0, "not an Ed25519 private key")])
    return key


def load_public(path: Path) -> bytes:
    """The raw bytes of the Ed25519 public key in a PEM file."""
    text = _read(path).decode("ascii", "replace").strip()
    begin, end = _PEM_PUBLIC
    if not (text.startswith(begin) and text.endswith(end)):
        raise ConfigError([Problem(str(path), 0, 0, "not a PEM public key (expected "
                                   f"{begin} ... {end})")])
    try:
        der = base64.b64decode("".join(text[len(begin):-len(end)].split()), validate=True)
    except binascii.Error:
        raise ConfigError([Problem(str(path), 0, 0, "not a PEM public key (bad base64)")]) from None
    if len(der) != len(_SPKI_ED25519) + 32 or not der.startswith(_SPKI_ED25519):
        raise ConfigError([Problem(str(path), 0, 0, "not an Ed25519 public key")])
    return der[len(_SPKI_ED25519):]


def trusted(paths: list[Path]) -> dict[str, bytes]:
    """The trusted public keys (raw bytes) by id; every unreadable file is reported at once."""
    keys: dict[str, bytes] = {}
    problems: list[Problem] = []
    for p in paths:
        try:
            k = load_public(p)
        except ConfigError as exc:
            problems += exc.problems
            continue
        keys[key_id(k)] = k
    if problems:
        raise ConfigError(problems)
    return keys


def sign(req: wire.DiagRequest, private: Ed25519PrivateKey) -> wire.DiagRequest:
    """The request with `key_id` and `sig` set."""
    req = msgspec.structs.replace(req, key_id=key_id(public_bytes(private.public_key())), sig="")
    sig = private.sign(wire.signing_bytes(req))
    return msgspec.structs.replace(req, sig=base64.b64encode(sig).decode())


@functools.lru_cache(maxsize=64)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(raw)


def verify(req: wire.DiagRequest, keys: Mapping[str, bytes]) -> None:
    """Raise DiagnosticRefused `unsigned`, `unknown_key` or `bad_signature` unless a trusted
    key (raw public bytes, by id) signed exactly this request."""
    from cryptography.exceptions import InvalidSignature

    if not req.sig:
        raise DiagnosticRefused("unsigned", "the request carries no signature")
    key = keys.get(req.key_id)
    if key is None:
        raise DiagnosticRefused("unknown_key", f"key {req.key_id!r} is not trusted here")
    try:
        sig = base64.b64decode(req.sig, validate=True)
        _public_key(key).verify(sig, wire.signing_bytes(req))
    except (InvalidSignature, binascii.Error, ValueError):
        raise DiagnosticRefused("bad_signature", "the signature does not match") from None
