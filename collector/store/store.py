"""Writes one ingest batch in one transaction; reads for the CLI and the API.

Ticket rules enforced here because the database enforces them across collectors: at most one
open ticket per fingerprint (a partial unique index), every change on the ticket's timeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector import outbox
from fieldwatch.collector.alerts import TicketChange
from fieldwatch.collector.sequence import SeqState
from fieldwatch.collector.store.schema import (
    OPEN_STATES,
    devices,
    messages,
    ticket_events,
    tickets,
)
from sqlalchemy.dialects import postgresql, sqlite


@dataclass
class DeviceSeen:
    """What a batch says about one device."""

    site: str
    device: str
    first: float
    last: float
    count: int = 0
    last_seq: int | None = None
    agent: str = ""
    status: str | None = None
    status_cause: str = ""
    status_at: float | None = None
    inventory: dict[str, Any] | None = None
    seq: SeqState | None = None  # this device's sequence accounting after the batch


@dataclass
class RawMessage:
    site: str
    device: str
    kind: str
    seq: int | None
    ts: float
    received_at: float
    payload: bytes


@dataclass
class BatchWrite:
    raw: list[RawMessage] = field(default_factory=list)
    devices: dict[tuple[str, str], DeviceSeen] = field(default_factory=dict)
    changes: list[TicketChange] = field(default_factory=list)


_SEQ_COLUMNS = ("seq_missing", "seq_backfilled", "seq_duplicates", "seq_gaps")


class Store:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    # -- writing ------------------------------------------------------------------------------

    def write(self, batch: BatchWrite, now: float) -> list[int]:
        """Store a batch atomically; returns the ids of tickets opened."""
        with self.engine.begin() as conn:
            if batch.raw:
                conn.execute(messages.insert(), [r.__dict__ for r in batch.raw])
            if batch.devices:
                self._upsert_devices(conn, batch.devices.values())
            return self._apply(conn, batch.changes, now)

    def _upsert_devices(self, conn: sa.Connection, seen: Iterable[DeviceSeen]) -> None:
        """One executemany for all devices of the batch; fields a message did not carry
        (status, inventory, seq) keep their stored value."""
        ins = self._insert(devices)
        ex = ins.excluded
        greatest = sa.func.max if self.engine.dialect.name == "sqlite" else sa.func.greatest
        stmt = ins.on_conflict_do_update(index_elements=[devices.c.site, devices.c.device], set_={
            "last_seen": greatest(devices.c.last_seen, ex.last_seen),
            "messages_total": devices.c.messages_total + ex.messages_total,
            "last_seq": sa.func.coalesce(ex.last_seq, devices.c.last_seq),
            "agent": sa.func.coalesce(sa.func.nullif(ex.agent, ""), devices.c.agent),
            # status_at is set exactly when the batch carried a status message
            "status": sa.case((ex.status_at.is_(None), devices.c.status), else_=ex.status),
            "status_cause": sa.case((ex.status_at.is_(None), devices.c.status_cause),
                                    else_=ex.status_cause),
            "status_at": sa.func.coalesce(ex.status_at, devices.c.status_at),
            "inventory": sa.func.coalesce(ex.inventory, devices.c.inventory),
            **{c: sa.func.coalesce(getattr(ex, c), getattr(devices.c, c)) for c in _SEQ_COLUMNS},
        })
        rows = [{"site": d.site, "device": d.device, "first_seen": d.first, "last_seen": d.last,
                 "messages_total": d.count, "last_seq": d.last_seq, "agent": d.agent,
                 "status": d.status or "unknown", "status_cause": d.status_cause,
                 "status_at": d.status_at, "inventory": d.inventory,
                 **(d.seq.as_columns() if d.seq else dict.fromkeys(_SEQ_COLUMNS))} for d in seen]
        conn.execute(stmt, rows)

    def _open_ticket(self, conn: sa.Connection, fp: str) -> sa.Row[Any] | None:
        return conn.execute(
            sa.select(tickets.c.id, tickets.c.state).where(
                tickets.c.fingerprint == fp, tickets.c.state.in_(OPEN_STATES))).first()

    def _apply(self, conn: sa.Connection, changes: Sequence[TicketChange], now: float) -> list[int]:
        opened: list[int] = []
        for ch in changes:
            actor = f"rule:{ch.rule}"
            if ch.kind == "fire":
                new_id = self._insert_ticket(conn, ch, now)
                if new_id is not None:
                    opened.append(new_id)
                    self._event(conn, new_id, ch.first_ts, actor, "opened",
                                f"{ch.rule} firing", {"value": ch.value})
                    continue
            row = self._open_ticket(conn, ch.fingerprint)
            if row is None:
                continue  # a repeat or clear with no open ticket (closed by hand): nothing to do
            if ch.kind == "resolve":
                if not ch.auto_resolve:
                    self._event(conn, row.id, ch.last_ts, actor, "alert_cleared",
                                "alert cleared; rule leaves resolving to a person")
                    continue
                conn.execute(tickets.update().where(tickets.c.id == row.id).values(
                    state="resolved", resolved_at=ch.last_ts, updated_at=now,
                    last_value=ch.value))
                self._event(conn, row.id, ch.last_ts, actor, "resolved", "alert cleared",
                            {"value": ch.value})
                continue
            conn.execute(tickets.update().where(tickets.c.id == row.id).values(
                occurrences=tickets.c.occurrences + ch.count, last_seen=ch.last_ts,
                last_value=ch.value, updated_at=now))
            if ch.kind == "fire":
                self._event(conn, row.id, ch.first_ts, actor, "refired",
                            "alert fired again while the ticket was open", {"value": ch.value})
        return opened

    def _insert_ticket(self, conn: sa.Connection, ch: TicketChange, now: float) -> int | None:
        stmt = self._insert(tickets).values(
            fingerprint=ch.fingerprint, rule=ch.rule, site=ch.site, device=ch.device,
            labels=dict(ch.labels), severity=ch.severity, state="open", title=ch.title,
            description=ch.description, team=ch.team, opened_at=ch.first_ts, updated_at=now,
            last_seen=ch.last_ts, last_value=ch.value, occurrences=ch.count,
        ).on_conflict_do_nothing(index_elements=[tickets.c.fingerprint],
                                 index_where=tickets.c.state.in_(OPEN_STATES)
                                 ).returning(tickets.c.id)
        row = conn.execute(stmt).first()
        return None if row is None else int(row[0])

    def _event(self, conn: sa.Connection, ticket_id: int, at: float, actor: str, kind: str,
               reason: str, data: dict[str, Any] | None = None) -> None:
        result = conn.execute(ticket_events.insert().values(
            ticket_id=ticket_id, at=at, actor=actor, kind=kind, reason=reason, data=data))
        # same transaction: the desks hear of this change exactly when it commits
        outbox.record(conn, ticket_id, result.inserted_primary_key[0], at, actor, kind, reason,
                      data)

    # -- reading ------------------------------------------------------------------------------

    def list_tickets(self, state: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        q = sa.select(tickets).order_by(tickets.c.id.desc()).limit(limit)
        if state == "open":
            q = q.where(tickets.c.state.in_(OPEN_STATES))
        elif state:
            q = q.where(tickets.c.state == state)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def timeline(self, ticket_id: int) -> list[dict[str, Any]]:
        q = sa.select(ticket_events).where(ticket_events.c.ticket_id == ticket_id).order_by(
            ticket_events.c.at, ticket_events.c.id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def sequence_states(self) -> dict[tuple[str, str], SeqState]:
        """Every device's sequence accounting, for a collector (re)starting."""
        q = sa.select(devices.c.site, devices.c.device, devices.c.last_seq, devices.c.last_seen,
                      *(getattr(devices.c, c) for c in _SEQ_COLUMNS))
        with self.engine.connect() as conn:
            return {(r.site, r.device): SeqState.from_columns(dict(r._mapping))
                    for r in conn.execute(q)}

    def list_devices(self) -> list[dict[str, Any]]:
        q = sa.select(devices).order_by(devices.c.site, devices.c.device)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]
