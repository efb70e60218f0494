"""Keys, configs and signed requests for the diagnostics tests."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fieldwatch import signing, wire


def keypair(tmp: Path, name: str = "diag-collector") -> tuple[Ed25519PrivateKey, Path, Path]:
    key_path, pub_path = signing.generate(tmp / "keys", name)
    return signing.load_private(key_path), key_path, pub_path


def request(check: str, now: float, key: Ed25519PrivateKey | None = None, *,
            args: dict[str, Any] | None = None, device: str = "pump-01", site: str = "plant",
            ticket: int | None = 1, ttl: float = 60.0, nonce: str | None = None,
            approval: wire.Approval | None = None, auto: bool = False) -> wire.DiagRequest:
    req = wire.DiagRequest(device=device, site=site, id=uuid.uuid4().hex, check=check,
                           issued=now, expires=now + ttl, nonce=nonce or uuid.uuid4().hex,
                           args=args or {}, ticket=ticket, approval=approval, auto=auto,
                           requested_by="test")
    return signing.sign(req, key) if key is not None else req


def nested(depth: int, id_: str = "nest", device: str = "pump-01") -> bytes:
    """A diag_req addressed to `device` whose args are `depth` nested lists (never legitimate:
    args map names to scalars)."""
    return (b'{"kind":"diag_req","id":"' + id_.encode() + b'","device":"' + device.encode()
            + b'","site":"plant","check":"ping","args":' + b"[" * depth + b"]" * depth + b"}")

    return False
