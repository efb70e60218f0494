"""The dead-letter table: what the store refused as data, kept as received, counted, listable.

A message lands here when its batch failed with a data error (failures.py) and the message,
split out of the batch, still failed on its own. Topic and payload are kept byte for byte, so
it can be read (`fieldwatch deadletter list`/`show`) and republished once the cause is fixed.
A ticket change refused the same way is kept as its JSON (kind `ticket`, no topic).

Every text column is made storable first (NUL escaped, cut to length): the row that records
a refusal must not be refused for the same reason.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.store.failures import describe
from fieldwatch.collector.store.schema import dead_letters
from fieldwatch.collector.tickets.alerts import TicketChange

from fieldwatch import wire
from fieldwatch.jsonout import iso

_KINDS: dict[type, tuple[str, str]] = {  # message type → (kind, its topic's kind)
    wire.Metrics: ("metrics", "metrics"), wire.Status: ("status", "status"),
    wire.Event: ("event", "events"), wire.Inventory: ("inventory", "inventory")}


def storable(text: str, limit: int = 2000) -> str:
    """Text any store takes: no NUL (PostgreSQL refuses it), no lone surrogates, bounded."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text[:limit]


def message_letter(item: Received, exc: BaseException, now: float) -> dict[str, Any]:
    msg = item.message
    kind, topic_kind = _KINDS.get(type(msg), (type(msg).__name__.lower(), "?"))
    return {"at": now, "received_at": item.received_at,
            "topic": storable(wire.topic(msg.site, msg.device, topic_kind), 1000),
            "site": storable(msg.site, 256), "device": storable(msg.device, 256),
            "kind": kind, "payload": bytes(item.payload), "error": type(exc).__name__[:64],
            "reason": storable(describe(exc))}


def change_letter(change: TicketChange, exc: BaseException, now: float) -> dict[str, Any]:
    body = {f.name: getattr(change, f.name) for f in dataclasses.fields(change)}
    payload = json.dumps(body, default=lambda v: dict(v) if isinstance(v, Mapping) else str(v))
    return {"at": now, "received_at": None, "topic": "", "site": storable(change.site, 256),
            "device": storable(change.device, 256), "kind": "ticket",
            "payload": payload.encode(), "error": type(exc).__name__[:64],
            "reason": storable(describe(exc))}


class DeadLetters:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            with self.engine.begin() as conn:
                conn.execute(dead_letters.insert(), rows)

    def list(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Newest first."""
        q = sa.select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit).offset(
            offset)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def get(self, letter_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(dead_letters).where(
                dead_letters.c.id == letter_id)).first()
        return None if row is None else dict(row._mapping)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(
                dead_letters)).scalar_one())


def letter_json(row: dict[str, Any]) -> dict[str, Any]:
    """The stable `--json` shape (docs/operations.md). `payload` is the received bytes as UTF-8
    text (bytes that are not UTF-8 as `\\xNN`); `payload_bytes` is its length in bytes."""
    payload = bytes(row["payload"])
    return {"id": row["id"], "at": iso(row["at"]), "received_at": iso(row["received_at"]),
            "topic": row["topic"], "site": row["site"], "device": row["device"],
            "kind": row["kind"], "error": row["error"], "reason": row["reason"],
            "payload": payload.decode("utf-8", "backslashreplace"),
            "payload_bytes": len(payload)}
