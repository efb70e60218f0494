"""A real agent over a real Mosquitto (issue 19 item 9): requests that do not decode — wrongly
typed, nested, oversized, junk — are all audited (never the payload whole) and answered when
their id can be read safely; a flood of them leaves the audit log within its rotation bounds,
and the agent still answers a good request afterwards."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fieldwatch.agent.diag.audit import AuditLog

from fieldwatch import wire
from tests.diag.helpers import keypair, nested, request
from tests.e2e.procs import Proc, wait_for, write_yaml
from tests.servers import Mosquitto

pytestmark = pytest.mark.e2e

MAX_BYTES, KEEP = 8192, 2


def start_agent(tmp: Path, port: int, pub: Path) -> Proc:
    cfg = write_yaml(tmp / "agent.yaml", {
        "device": "pump-01", "site": "plant", "interval": "1s",
        "broker": {"host": "127.0.0.1", "port": port}, "state_dir": str(tmp / "state"),
        "sources": {"cpu": {"enabled": False}, "load": {"enabled": False},
                    "memory": {"enabled": False}, "disks": {"enabled": False},
                    "net": {"enabled": False}},
        "diag": {"trusted_keys": [str(pub)], "audit_max_bytes": MAX_BYTES,
                 "audit_keep": KEEP, "queue_max": 1000}})
    return Proc(["agent", "run", "--config", str(cfg)], tmp / "agent.log")


def test_undecodable_requests_are_audited_answered_where_addressable_and_bounded(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    key, _, pub = keypair(tmp_path)
    agent = start_agent(tmp_path, mosquitto.port, pub)
    answers: dict[str, wire.DiagResult] = {}
    lock = threading.Lock()

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        res = wire.decode_diag_result(m.payload)
        with lock:
            answers[res.id] = res

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="collector-ish")
    client.on_message = on_message
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    client.subscribe(wire.topic("plant", "pump-01", "diag/res"), qos=1)
    req_topic = wire.topic("plant", "pump-01", "diag/req")

    def send(payload: bytes) -> None:
        client.publish(req_topic, payload, qos=1).wait_for_publish(5)

    def good() -> str:
        req = request("list", time.time(), key, ticket=None)
        send(wire.encode_diag(req))
        return req.id

    audit = AuditLog(tmp_path / "state" / "diag-audit.jsonl", MAX_BYTES, KEEP)
    try:
        # the agent subscribes after it connects: ask until it answers
        first: list[str] = []
        wait_for(lambda: first.append(good()) or any(i in answers for i in first), 30, 0.5)
        bad: dict[str, bytes] = {
            "typed": b'{"kind":"diag_req","id":"typed-1","device":"pump-01","check":5}',
            "nested-200": nested(200, "nested-200"),
            "nested-3000": nested(3000, "nested-3000"),
            "oversized": (b'{"kind":"diag_req","id":"big-1","device":"pump-01","args":{"a":"'
                          + b"A" * 70_000 + b'"}}'),
        }
        for payload in bad.values():
            send(payload)
        last = good()
        wait_for(lambda: last in answers, 20)
        sha = {name: hashlib.sha256(p).hexdigest() for name, p in bad.items()}
        recs: dict[str, dict[str, Any]] = {}

        def audited() -> bool:
            for r in audit.read():
                for name, h in sha.items():
                    if r.get("payload_sha256") == h:
                        recs[name] = r
            return len(recs) == len(bad)

        wait_for(audited, 20)
        assert {n: (r["status"], r["answered"]) for n, r in recs.items()} == {
            "typed": ("refused", True), "nested-200": ("refused", True),
            "nested-3000": ("refused", False), "oversized": ("refused", False)}
        assert recs["oversized"]["payload_bytes"] == len(bad["oversized"])
        assert recs["nested-3000"]["payload_head"] == bad["nested-3000"][:64].decode()
        # a 3,000-level request is refused as malformed (wire's depth bound), never a crash
        assert recs["nested-3000"]["reason"] == "malformed"
        assert (answers["typed-1"].status, answers["typed-1"].reason) == ("refused",
                                                                          "malformed")
        assert answers["nested-200"].reason == "malformed"
        assert "nested-3000" not in answers and "big-1" not in answers
        # a flood of junk: the audit log rotates and keeps within (keep + 1) files of max_bytes
        for n in range(300):
            send(f"junk-{n:03d} ".encode() + uuid.uuid4().bytes.hex().encode() * 16)
        final = good()
        wait_for(lambda: final in answers, 30)
        wait_for(lambda: any(str(r.get("payload_head", "")).startswith("junk-299")
                             for r in audit.read()), 20)
        files = audit.files()
        assert len(files) == KEEP + 1
        assert all(p.stat().st_size <= MAX_BYTES for p in files)
        assert not (tmp_path / "state" / f"diag-audit.jsonl.{KEEP + 1}").exists()
    finally:
        client.loop_stop()
        client.disconnect()
        assert agent.stop() == 0, agent.log.read_text()[-3000:]
