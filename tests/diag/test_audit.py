"""The agent's audit log stays bounded: every field cut, the file rotated, the oldest dropped."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from fieldwatch.agent.diag.audit import AuditLog, payload_facts, record

from fieldwatch import wire
from tests.diag.helpers import request


def refusal(n: int) -> dict[str, object]:
    res = wire.DiagResult(device="pump-01", site="plant", id=f"req-{n:04d}", check="ping",
                          status="refused", ts=float(n), reason="unsigned")
    return record(request("ping", float(n)), res, float(n))


def test_rotates_at_max_bytes_keeps_n_files_and_drops_the_oldest(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "diag-audit.jsonl", max_bytes=2000, keep=2)
    for n in range(200):
        log.write(refusal(n))
    files = log.files()
    assert [p.name for p in files] == ["diag-audit.jsonl.2", "diag-audit.jsonl.1",
                                       "diag-audit.jsonl"]
    assert all(p.stat().st_size <= 2000 for p in files)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    kept = [r["id"] for r in log.read()]
    assert kept == sorted(kept) and kept[-1] == "req-0199"  # oldest first, newest kept
    assert "req-0000" not in kept  # rotated out
    assert not (tmp_path / "diag-audit.jsonl.3").exists()


def test_a_line_longer_than_max_bytes_gets_a_file_of_its_own(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl", max_bytes=10, keep=1)
    log.write({"x": "first"})
    log.write({"x": "second"})
    assert [r["x"] for r in log.read()] == ["first", "second"]
    assert [len(p.read_text().splitlines()) for p in log.files()] == [1, 1]


def test_bad_bounds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        AuditLog(tmp_path / "a.jsonl", max_bytes=0)
    with pytest.raises(ValueError):
        AuditLog(tmp_path / "a.jsonl", keep=0)


def test_every_field_a_request_carries_is_bounded() -> None:
    req = request("ping" * 1000, 1.0, args={"host": "x" * 60_000})
    req = wire.DiagRequest(**{**{f: getattr(req, f) for f in req.__struct_fields__},
                              "requested_by": "r" * 50_000, "nonce": "n" * 50_000,
                              "key_id": "k" * 50_000, "sig": "s" * 50_000})
    res = wire.DiagResult(device="pump-01", site="plant", id="i" * 50_000, check=req.check,
                          status="refused", ts=1.0, reason="unsigned", detail="d" * 50_000)
    line = json.dumps(record(req, res, 1.0))
    assert len(line) < 6000


def test_an_undecodable_payload_is_recorded_by_size_hash_and_head_only() -> None:
    payload = b'{"kind":"diag_req","args":' + b"[" * 3000 + b"]" * 3000 + b"}"
    facts = payload_facts(payload)
    assert facts["payload_bytes"] == len(payload) and len(facts["payload_sha256"]) == 64
    assert facts["payload_head"] == payload[:64].decode()
