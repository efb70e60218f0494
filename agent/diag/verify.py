"""Is this request from our collector, current and new? Signature, expiry, nonce replay.

Seen nonces are kept on disk until their request expires, so a request captured off the
broker cannot be replayed after an agent restart either. Requests valid for longer than
`max_validity` are refused, which bounds how long (and how many) nonces must be kept.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from fieldwatch import signing, wire
from fieldwatch.errors import DiagnosticRefused


class NonceStore:
    """Nonce → expiry, persisted atomically on every addition."""

    def __init__(self, path: Path, max_entries: int = 100_000) -> None:
        self.path, self.max = path, max_entries
        self.seen: dict[str, float] = {}
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                self.seen = {str(k): float(v) for k, v in data.items()}
        except FileNotFoundError:
            pass
        except (ValueError, TypeError):
            # A damaged file must not open a replay window: keep it aside and start empty,
            # with every request valid for at most max_validity from now on.
            path.replace(path.with_suffix(".damaged"))

    def add(self, nonce: str, expires: float, now: float) -> None:
        """Record a nonce, or refuse `replayed` if it is already known."""
        self.seen = {n: e for n, e in self.seen.items() if e >= now}
        if nonce in self.seen:
            raise DiagnosticRefused("replayed", "this request was seen before")
        if len(self.seen) >= self.max:
            raise DiagnosticRefused("busy", "too many recent requests to remember")
        self.seen[nonce] = expires
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(self.seen, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.with_suffix(".tmp").unlink()


class Verifier:
    def __init__(self, keys: Mapping[str, bytes], nonces: NonceStore,
                 max_validity: float, skew: float) -> None:
        self.keys, self.nonces = keys, nonces
        self.max_validity, self.skew = max_validity, skew

    def check(self, req: wire.DiagRequest, now: float) -> None:
        """Refuse unsigned, unknown_key, bad_signature, expired, not_yet_valid,
        too_long_valid, bad_nonce or replayed; otherwise remember the nonce."""
        signing.verify(req, self.keys)
        if req.expires < now:
            raise DiagnosticRefused("expired", f"expired {now - req.expires:.0f}s ago")
        if req.issued > now + self.skew:
            raise DiagnosticRefused("not_yet_valid", "issued in the future (check clocks)")
        if req.expires - req.issued > self.max_validity or req.expires > now + self.max_validity \
                + self.skew:
            raise DiagnosticRefused("too_long_valid",
                                    f"valid for more than {self.max_validity:g}s")
        if not 16 <= len(req.nonce) <= 128:
            raise DiagnosticRefused("bad_nonce", "the nonce must be 16-128 characters")
        self.nonces.add(req.nonce, req.expires + self.skew, now)
