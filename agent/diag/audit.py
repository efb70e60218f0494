"""The agent's audit log: one JSON line per request, refused or run, appended and synced.

It records what was asked, by whom and on which ticket, and what came of it — never the
output itself (its size and SHA-256 stand in), never secrets, and of a request that could not
be decoded only its size, hash and first bytes. Every field is bounded, and the file rotates
like logging's RotatingFileHandler (`diag-audit.jsonl` → `.1` → … → `.<keep>`, the oldest
dropped), so a flood of junk requests costs at most (keep + 1) × max_bytes of disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from fieldwatch import wire

MAX_BYTES = 10 * 2**20  # per file; the default of diag.audit_max_bytes (agent/diag/config.py)
KEEP = 5  # rotated files kept besides the current one; the default of diag.audit_keep


class AuditLog:
    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> None:
        if max_bytes < 1 or keep < 1:
            raise ValueError("audit log: max_bytes and keep must be at least 1")
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, sort_keys=True, default=str, separators=(",", ":"))
                + "\n").encode()
        with self._lock:
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(line) > self.max_bytes:
                self._rotate()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def _rotate(self) -> None:
        """path.<keep-1> → path.<keep> … path → path.1; the oldest is replaced."""
        for i in range(self.keep - 1, 0, -1):
            older = self._numbered(i)
            if older.exists():
                os.replace(older, self._numbered(i + 1))
        os.replace(self.path, self._numbered(1))
        dirfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)  # the renames survive a power cut with the lines they moved
        finally:
            os.close(dirfd)

    def _numbered(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def files(self) -> list[Path]:
        """The log's files that exist, oldest first."""
        named = [self._numbered(i) for i in range(self.keep, 0, -1)] + [self.path]
        return [p for p in named if p.exists()]

    def read(self) -> list[dict[str, Any]]:
        """Every record still kept, oldest first."""
        out = []
        for p in self.files():
            try:
                text = p.read_text()
            except FileNotFoundError:  # rotated away meanwhile
                continue
            out.extend(json.loads(line) for line in text.splitlines() if line.strip())
        return out


MAX_ARGS_CHARS = 2048  # a flood of junk requests must not fill the disk through the audit log
MAX_TEXT = 256  # any other string a request carries (ids, names, nonces, signatures)
MAX_DETAIL = 1000
PAYLOAD_HEAD = 64  # bytes of an undecodable payload kept to recognise it by


def _bounded(args: dict[str, Any]) -> Any:
    text = json.dumps(args, sort_keys=True, default=str)
    return args if len(text) <= MAX_ARGS_CHARS else {"_cut": text[:MAX_ARGS_CHARS]}


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + f"…[{len(text)} chars]"


def payload_facts(payload: bytes) -> dict[str, Any]:
    """What stands in for a payload that could not be decoded: never the payload in full."""
    return {"payload_bytes": len(payload), "payload_sha256": hashlib.sha256(payload).hexdigest(),
            "payload_head": payload[:PAYLOAD_HEAD].decode("utf-8", "replace")}


def record(req: wire.DiagRequest | None, res: wire.DiagResult, received: float,
           output: bytes = b"") -> dict[str, Any]:
    r: dict[str, Any] = {"ts": res.ts, "received": received, "id": _cut(res.id),
                         "check": _cut(res.check), "status": res.status,
                         "reason": _cut(res.reason), "detail": _cut(res.detail, MAX_DETAIL),
                         "ticket": res.ticket}
    if req is not None:
        r.update(args=_bounded(req.args), auto=req.auto, requested_by=_cut(req.requested_by),
                 key_id=_cut(req.key_id), signed=bool(req.sig), issued=req.issued,
                 expires=req.expires, nonce=_cut(req.nonce),
                 approval=None if req.approval is None else {
                     "action": _cut(req.approval.action), "by": _cut(req.approval.by),
                     "at": req.approval.at, "on_behalf_of": _cut(req.approval.on_behalf_of),
                     "ticket": req.approval.ticket})
    if res.status != "refused":
        r.update(exit_code=res.exit_code, duration=round(res.duration, 3),
                 output_bytes=res.output_bytes, truncated=res.truncated,
                 output_sha256=hashlib.sha256(output).hexdigest())
    return r
