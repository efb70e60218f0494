"""The agent's audit log: one JSON line per request, refused or run, appended and synced.

It records what was asked, by whom and on which ticket, and what came of it — never the
output itself (its size and SHA-256 stand in) and never secrets.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from fieldwatch import wire


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, default=str, separators=(",", ":")) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]


MAX_ARGS_CHARS = 2048  # a flood of junk requests must not fill the disk through the audit log


def _bounded(args: dict[str, Any]) -> Any:
    text = json.dumps(args, sort_keys=True, default=str)
    return args if len(text) <= MAX_ARGS_CHARS else {"_cut": text[:MAX_ARGS_CHARS]}


def record(req: wire.DiagRequest | None, res: wire.DiagResult, received: float,
           output: bytes = b"") -> dict[str, Any]:
    r: dict[str, Any] = {"ts": res.ts, "received": received, "id": res.id, "check": res.check,
                         "status": res.status, "reason": res.reason, "detail": res.detail,
                         "ticket": res.ticket}
    if req is not None:
        r.update(args=_bounded(req.args), auto=req.auto, requested_by=req.requested_by,
                 key_id=req.key_id, signed=bool(req.sig), issued=req.issued,
                 expires=req.expires, nonce=req.nonce,
                 approval=None if req.approval is None else {
                     "action": req.approval.action, "by": req.approval.by,
                     "at": req.approval.at, "on_behalf_of": req.approval.on_behalf_of,
                     "ticket": req.approval.ticket})
    if res.status != "refused":
        r.update(exit_code=res.exit_code, duration=round(res.duration, 3),
                 output_bytes=res.output_bytes, truncated=res.truncated,
                 output_sha256=hashlib.sha256(output).hexdigest())
    return r
