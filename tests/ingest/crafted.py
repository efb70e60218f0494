"""The hostile payloads of issue 19, one list for the unit tests and the spray at a collector.

Each is a JSON object built from a valid message with one field replaced by raw bytes (JSON
cannot spell NaN, a 3,000-deep array or invalid UTF-8, so they are spliced in as bytes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

SITE, DEVICE = "plant", "pump-01"
HOLE = "@@hole@@"


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@dataclass(frozen=True)
class Crafted:
    name: str
    kind: str  # the topic's last part: metrics, status, events, inventory, diag/res, diag/req
    payload: bytes
    reason: str  # the rejection's reason

    @property
    def topic(self) -> str:
        return f"fieldwatch/v1/{SITE}/{DEVICE}/{self.kind}"


def valid(kind: str, now: float) -> dict[str, object]:
    """A valid message of each kind (the diag ones before any signature check)."""
    base: dict[str, object] = {"v": 1, "device": DEVICE, "site": SITE}
    return base | {
        "metrics": {"kind": "metrics", "seq": 1, "ts": now,
                    "samples": [{"name": "pump.temp_celsius", "value": 20.0}]},
        "status": {"kind": "status", "state": "online", "cause": "connected", "ts": now},
        "events": {"kind": "event", "type": "agent.test", "ts": now, "fields": {"a": 1}},
        "inventory": {"kind": "inventory", "ts": now, "facts": {"os": "Linux"}},
        "diag/res": {"kind": "diag_res", "id": "r1", "check": "ping", "status": "ok",
                     "ts": now},
        "diag/req": {"kind": "diag_req", "id": "r1", "check": "ping", "issued": now,
                     "expires": now + 60, "nonce": "n" * 32},
    }[kind]


def splice(kind: str, now: float, raw: bytes, *path: str | int) -> bytes:
    """The valid message of `kind` with the field at `path` set to `raw` bytes."""
    msg = valid(kind, now)
    target: dict | list = msg  # type: ignore[type-arg]
    for key in path[:-1]:
        target = target[key]  # type: ignore[index]
    target[path[-1]] = HOLE  # type: ignore[index]
    return json.dumps(msg).encode().replace(json.dumps(HOLE).encode(), raw)


def crafted(now: float, max_bytes: int = 256 * 1024) -> list[Crafted]:
    out = [Crafted(f"3000-deep on {kind}", kind, splice(kind, now, deep(3000), "x"), "nesting")
           for kind in ("metrics", "status", "events", "inventory", "diag/res", "diag/req")]
    m = "metrics"
    out += [
        Crafted("100000-deep on metrics", m, splice(m, now, deep(100_000), "x"), "nesting"),
        Crafted("3000-deep inventory facts", "inventory",
                splice("inventory", now, deep(3000), "facts", "disks"), "nesting"),
        Crafted("seq = 2**63", m, splice(m, now, b"9223372036854775808", "seq"), "range"),
        Crafted("seq = -1", m, splice(m, now, b"-1", "seq"), "range"),
        Crafted("ts = 1e300", m, splice(m, now, b"1e300", "ts"), "range"),
        Crafted("sample ts = 1e300", m, splice(m, now, b"1e300", "samples", 0, "ts"), "range"),
        Crafted("ts a month ahead", m, splice(m, now, str(now + 30 * 86400).encode(), "ts"),
                "range"),
        Crafted("ts in 2001", m, splice(m, now, b"1000000000", "ts"), "range"),
        Crafted("value NaN", m, splice(m, now, b"NaN", "samples", 0, "value"), "malformed"),
        Crafted("value Infinity", m, splice(m, now, b"Infinity", "samples", 0, "value"),
                "malformed"),
        Crafted("value -Infinity", m, splice(m, now, b"-Infinity", "samples", 0, "value"),
                "malformed"),
        Crafted("value 1e999", m, splice(m, now, b"1e999", "samples", 0, "value"), "range"),
        Crafted("event ts = 1e300", "events", splice("events", now, b"1e300", "ts"), "range"),
        Crafted("event field 2**64", "events",
                splice("events", now, b"18446744073709551616", "fields", "a"), "range"),
        Crafted("status ts = 1e300", "status", splice("status", now, b"1e300", "ts"), "range"),
        Crafted("inventory ts = 1e300", "inventory", splice("inventory", now, b"1e300", "ts"),
                "range"),
        Crafted("inventory fact 2**70", "inventory",
                splice("inventory", now, str(2**70).encode(), "facts", "ram_bytes"), "range"),
        Crafted("diag result ts = 1e300", "diag/res", splice("diag/res", now, b"1e300", "ts"),
                "range"),
        Crafted("diag result exit code 2**63", "diag/res",
                splice("diag/res", now, b"9223372036854775808", "exit_code"), "range"),
        Crafted("oversized metrics", m,
                splice(m, now, json.dumps("x" * max_bytes).encode(), "agent"), "oversized"),
        Crafted("invalid UTF-8 device", m, splice(m, now, b'"pump-\xff"', "device"),
                "malformed"),
        Crafted("invalid UTF-8 label", m,
                splice(m, now, b'{"k": "\xc3\x28"}', "samples", 0, "labels"), "malformed"),
        Crafted("lone surrogate escape", m, splice(m, now, b'"\\udc80"', "agent"), "malformed"),
    ]
    return out
