"""Writes one ingest batch in one transaction; reads for the CLI and the API.

Ticket rules enforced here because the database enforces them across collectors: at most one
open ticket per fingerprint (a partial unique index), every change on the ticket's timeline.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.desks import outbox
from fieldwatch.collector.history import store as history
from fieldwatch.collector.history.ingest import SampleRows
from fieldwatch.collector.ingest.sequence import SeqState
from fieldwatch.collector.store.schema import (
    OPEN_STATES,
    devices,
    escalations,
    messages,
    ticket_events,
    tickets,
)
from fieldwatch.collector.tickets.actions import close_pause
from fieldwatch.collector.tickets.alerts import TicketChange
from fieldwatch.collector.tickets.cases import CANDIDATES
from fieldwatch.collector.tickets.config import DeskPolicy
from fieldwatch.collector.tickets.recurrence import LastTicket, on_fire
from fieldwatch.collector.tickets.routing import Facts, pick_member, route
from sqlalchemy.dialects import postgresql, sqlite

from fieldwatch.errors import FieldwatchError, TicketNotFound


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
    raw_items: list[int] = field(default_factory=list)  # per raw row: its item in the batch
    devices: dict[tuple[str, str], DeviceSeen] = field(default_factory=dict)
    changes: list[TicketChange] = field(default_factory=list)
    samples: SampleRows | None = None  # metric history (collector/history), None: not kept
    # cluster mode: device → its last stored seq as this collector believes it (handover.py);
    # the write is refused (Fenced) if another collector has stored the device since
    fence: dict[tuple[str, str], int | None] | None = None


class Fenced(FieldwatchError):
    """Another collector stored one of the batch's devices since this one took it over: its
    partition has moved (cluster mode). Nothing of the batch is written."""

    def __init__(self, devices: list[tuple[str, str]]) -> None:
        super().__init__(f"{len(devices)} devices were stored by another collector meanwhile: "
                         + ", ".join(f"{s}/{d}" for s, d in devices[:5]))
        self.devices = devices


_SEQ_COLUMNS = ("seq_missing", "seq_backfilled", "seq_duplicates", "seq_gaps")


class Store:
    """SQL for tickets, devices and messages; decisions come from the pure modules.

    `add_event` is the one place a ticket change is recorded: anything that must happen with
    every change in the same transaction (an outbox row for external desks) belongs there.
    """

    def __init__(self, engine: sa.Engine, policy: DeskPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy or DeskPolicy()
        self.pg = engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if self.pg else sqlite.insert

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- writing ------------------------------------------------------------------------------

    def write(self, batch: BatchWrite, now: float) -> list[int]:
        """Store a batch atomically; returns the ids of tickets opened."""
        kept = batch.samples if batch.samples is not None and batch.samples.rows else None
        if kept is not None:
            history.resolve(self.engine, kept, now)  # committed first, on its own
        with self.engine.begin() as conn:
            if batch.fence:
                self._check_fence(conn, batch.fence)
            if batch.raw:
                conn.execute(messages.insert(), [r.__dict__ for r in batch.raw])
            if kept is not None:
                history.write_samples(conn, kept, now)
            if batch.devices:
                self._upsert_devices(conn, batch.devices.values())
            return self._apply(conn, batch.changes, now)

    def _check_fence(self, conn: sa.Connection, fence: dict[tuple[str, str], int | None]
                     ) -> None:
        """Lock the batch's device rows (PostgreSQL; SQLite's write lock already serializes)
        and refuse the batch if one's last seq is not what this collector believes."""
        q = sa.select(devices.c.site, devices.c.device, devices.c.last_seq).where(
            sa.tuple_(devices.c.site, devices.c.device).in_(sorted(fence))).order_by(
            devices.c.site, devices.c.device)
        if self.pg:
            q = q.with_for_update()
        stored = {(r.site, r.device): r.last_seq for r in conn.execute(q)}
        moved = [k for k, last in fence.items() if stored.get(k) != last]
        if moved:
            raise Fenced(sorted(moved))

    def probe(self) -> None:
        """A known-good write of what `write` writes, rolled back: raises if the store cannot
        take rows at all (failures.py asks this when it cannot tell whose fault a failure is)."""
        with self.engine.connect() as conn, conn.begin() as tx:
            conn.execute(messages.insert(), [RawMessage("~probe", "~probe", "metrics", 1, 0.0,
                                                        0.0, b"{}").__dict__])
            self._upsert_devices(conn, [DeviceSeen("~probe", "~probe", 0.0, 0.0)])
            history.probe(conn)
            tx.rollback()

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
                 **(d.seq.as_columns() if d.seq else dict.fromkeys(_SEQ_COLUMNS))}
                # one lock order for every collector: no deadlocks between concurrent batches
                for d in sorted(seen, key=lambda d: (d.site, d.device))]
        conn.execute(stmt, rows)

    def _open_ticket(self, conn: sa.Connection, fp: str) -> sa.Row[Any] | None:
        return conn.execute(
            sa.select(*_OPEN_COLS).where(
                tickets.c.fingerprint == fp, tickets.c.state.in_(OPEN_STATES))).first()

    def _open_tickets(self, conn: sa.Connection, fps: Iterable[str]) -> dict[str, sa.Row[Any]]:
        out: dict[str, sa.Row[Any]] = {}
        wanted = sorted(fps)
        for i in range(0, len(wanted), 500):
            for row in conn.execute(sa.select(*_OPEN_COLS).where(
                    tickets.c.fingerprint.in_(wanted[i:i + 500]),
                    tickets.c.state.in_(OPEN_STATES))):
                out[row.fingerprint] = row
        return out

    def _apply(self, conn: sa.Connection, changes: Sequence[TicketChange], now: float) -> list[int]:
        """Apply a batch's ticket changes with few statements: one read of the open tickets,
        repeats merged per ticket into one executemany UPDATE, events inserted together."""
        opened: list[int] = []
        # Stable sort: each fingerprint keeps its order, and concurrent collectors take row
        # locks in the same order.
        ordered = sorted(changes, key=lambda c: c.fingerprint)
        live = self._open_tickets(conn, {c.fingerprint for c in ordered})
        # what opening needs, read once for the batch: the fault's last ticket, the inventory
        firing = [c for c in ordered if c.kind == "fire" and c.fingerprint not in live]
        lasts = self._last_tickets(conn, {c.fingerprint for c in firing})
        inventories = self._inventories(conn, {(c.site, c.device) for c in firing})
        fired: set[str] = set()
        merged: dict[int, dict[str, Any]] = {}
        events: list[dict[str, Any]] = []
        for ch in ordered:
            actor = f"rule:{ch.rule}"
            row = live.get(ch.fingerprint)
            if ch.kind == "fire" and row is None:
                if ch.fingerprint in fired:  # fired earlier in this batch: read it afresh
                    last = self._last_tickets(conn, [ch.fingerprint]).get(ch.fingerprint)
                else:
                    last = lasts.get(ch.fingerprint)
                fired.add(ch.fingerprint)
                new_id = self._fire(conn, ch, now, actor, last,
                                    inventories.get((ch.site, ch.device)))
                if new_id is not None:
                    opened.append(new_id)
                    live[ch.fingerprint] = _Live(new_id, ch.fingerprint, "open", ch.first_ts, [],
                                                 None)
                else:  # reopened, or updated because another collector opened it: look again
                    found = self._open_ticket(conn, ch.fingerprint)
                    if found is not None:
                        live[ch.fingerprint] = found
                continue
            if row is None:
                continue  # a repeat or clear with no open ticket (closed by hand): nothing to do
            if ch.kind == "resolve":
                self._flush(conn, [merged.pop(row.id)] if row.id in merged else [], events)
                self._auto_resolve(conn, row, ch, now, actor)
                if ch.auto_resolve:
                    del live[ch.fingerprint]
                continue
            m = merged.setdefault(row.id, {"b_id": row.id, "b_n": 0, "b_now": now,
                                           "b_uea": None, "seen_uea": row.update_event_at})
            m.update(b_n=m["b_n"] + ch.count, b_ts=ch.last_ts, b_v=ch.value)
            if ch.kind == "fire":
                events.append(_event_row(row.id, ch.first_ts, actor, "refired",
                                         "alert fired again while the ticket was open",
                                         {"value": ch.value}))
            elif (m["seen_uea"] is None
                  or ch.last_ts - m["seen_uea"] >= self.policy.update_event_every):
                m["b_uea"] = m["seen_uea"] = ch.last_ts
                events.append(_event_row(row.id, ch.last_ts, actor, "alert_update",
                                         f"still firing ({ch.count} more samples)",
                                         {"value": ch.value, "count": ch.count}))
        self._flush(conn, sorted(merged.values(), key=lambda m: m["b_id"]), events)
        return opened

    def _flush(self, conn: sa.Connection, merged: list[dict[str, Any]],
               events: list[dict[str, Any]]) -> None:
        """Write merged repeats and pending events (before a resolve, and at batch end)."""
        if merged:
            conn.execute(_REPEAT, [{k: v for k, v in m.items() if k.startswith("b_")}
                                   for m in merged])
        self.add_events(conn, events)
        events.clear()

    def _auto_resolve(self, conn: sa.Connection, row: sa.Row[Any], ch: TicketChange,
                      now: float, actor: str) -> None:
        why = ch.resolution or "alert cleared"  # e.g. "no data: ..." (a series gone stale)
        if not ch.auto_resolve:
            self.add_event(row.id, ch.last_ts, actor, "alert_cleared",
                           f"{why}; rule leaves resolving to a person", conn=conn)
            return
        conn.execute(tickets.update().where(tickets.c.id == row.id).values(
            state="resolved", resolved_at=ch.last_ts, updated_at=now, last_value=ch.value,
            waiting_since=None, pauses=close_pause(row.pauses, ch.last_ts)))
        self.add_event(row.id, ch.last_ts, actor, "resolved", why,
                       {"value": ch.value}, conn=conn)

    def _repeat(self, conn: sa.Connection, row: sa.Row[Any], ch: TicketChange, now: float,
                actor: str) -> None:
        values: dict[str, Any] = {"occurrences": tickets.c.occurrences + ch.count,
                                  "last_seen": ch.last_ts, "last_value": ch.value,
                                  "updated_at": now}
        if ch.kind == "repeat" and (row.update_event_at is None or ch.last_ts
                                    - row.update_event_at >= self.policy.update_event_every):
            values["update_event_at"] = ch.last_ts
            self.add_event(row.id, ch.last_ts, actor, "alert_update",
                           f"still firing ({ch.count} more samples)",
                           {"value": ch.value, "count": ch.count}, conn=conn)
        conn.execute(tickets.update().where(tickets.c.id == row.id).values(**values))
        if ch.kind == "fire":
            self.add_event(row.id, ch.first_ts, actor, "refired",
                           "alert fired again while the ticket was open", {"value": ch.value},
                           conn=conn)

    def _last_tickets(self, conn: sa.Connection, fps: Iterable[str]) -> dict[str, sa.Row[Any]]:
        """The newest ticket of each fingerprint (for recurrences), in one query per 500."""
        out: dict[str, sa.Row[Any]] = {}
        wanted = sorted(fps)
        for i in range(0, len(wanted), 500):
            for row in conn.execute(sa.select(tickets).where(
                    tickets.c.fingerprint.in_(wanted[i:i + 500])).order_by(tickets.c.id)):
                out[row.fingerprint] = row  # ascending ids: the newest wins
        return out

    def _inventories(self, conn: sa.Connection, keys: Iterable[tuple[str, str]]
                     ) -> dict[tuple[str, str], Any]:
        wanted = sorted(keys)
        out: dict[tuple[str, str], Any] = {}
        for i in range(0, len(wanted), 200):
            part = wanted[i:i + 200]
            q = sa.select(devices.c.site, devices.c.device, devices.c.inventory).where(
                sa.or_(*(sa.and_(devices.c.site == s, devices.c.device == d) for s, d in part)))
            out.update({(r.site, r.device): r.inventory for r in conn.execute(q)})
        return out

    def _fire(self, conn: sa.Connection, ch: TicketChange, now: float, actor: str,
              last: sa.Row[Any] | None, inventory: Any) -> int | None:
        """A new alert with no open ticket: a recurrence, or a new ticket (None: no new one)."""
        recurrence_of = None
        if last is not None:
            # the decision is shared with `rules backtest` (tickets.recurrence)
            how = on_fire(LastTicket.of(last), ch.first_ts,
                          getattr(ch, "on_recurrence", "reopen"), self.policy.sla.verify_window)
            if how == "wont_fix":
                self.add_event(last.id, ch.first_ts, actor, "recurred",
                               "fault came back; the ticket was closed as won't fix",
                               {"value": ch.value}, conn=conn)
                return None
            if how != "open":  # a recurrence within the verification window
                if how == "reopen" and self._reopen(conn, last, ch, now, actor):
                    return None
                if how in ("ignore", "new"):
                    conn.execute(tickets.update().where(tickets.c.id == last.id).values(
                        recurrences=tickets.c.recurrences + 1, updated_at=now))
                    if how == "ignore":
                        self.add_event(last.id, ch.first_ts, actor, "recurred",
                                       "fault came back within the verification window; "
                                       "the rule ignores recurrences", {"value": ch.value},
                                       conn=conn)
                        return None
                    recurrence_of = last.id
                row = self._open_ticket(conn, ch.fingerprint)  # reopened by another collector
                if row is not None:
                    self._repeat(conn, row, ch, now, actor)
                    return None
        new_id = self._insert_ticket(conn, ch, now, recurrence_of, inventory)
        if new_id is None:  # another collector opened it first: the unique index said so
            row = self._open_ticket(conn, ch.fingerprint)
            if row is not None:
                self._repeat(conn, row, ch, now, actor)
            return None
        if recurrence_of is not None:
            self.add_event(recurrence_of, ch.first_ts, actor, "recurred",
                           f"fault came back; new ticket {new_id} opened per rule",
                           {"ticket": new_id}, conn=conn)
        return new_id

    def _reopen(self, conn: sa.Connection, last: sa.Row[Any], ch: TicketChange, now: float,
                actor: str) -> bool:
        pauses = [*[list(p) for p in last.pauses or []], [last.resolved_at, ch.first_ts]]
        res = conn.execute(tickets.update().where(
            tickets.c.id == last.id, tickets.c.state == "resolved").values(
            state="reopened", resolved_at=None, reopen_count=tickets.c.reopen_count + 1,
            recurrences=tickets.c.recurrences + 1, occurrences=tickets.c.occurrences + ch.count,
            last_seen=ch.last_ts, last_value=ch.value, updated_at=now, pauses=pauses))
        if res.rowcount != 1:
            return False
        self.add_event(last.id, ch.first_ts, actor, "reopened",
                       "fault recurred within the verification window", {"value": ch.value},
                       conn=conn)
        return True

    def _insert_ticket(self, conn: sa.Connection, ch: TicketChange, now: float,
                       recurrence_of: int | None, inv: Any) -> int | None:
        device_type = device_type_of(inv)
        team, assignee = self.assign_for(conn, Facts(ch.rule, ch.site, ch.device, device_type,
                                                     ch.labels), ch.team)
        stmt = self._insert(tickets).values(
            fingerprint=ch.fingerprint, rule=ch.rule, site=ch.site, device=ch.device,
            labels=dict(ch.labels), severity=ch.severity, priority=ch.severity,
            sla_priority=ch.severity, state="open", title=ch.title, source="rule",
            description=ch.description, team=team, opened_at=ch.first_ts, updated_at=now,
            last_seen=ch.last_ts, last_value=ch.value, occurrences=ch.count,
            device_type=device_type, inventory=inv, assignee=assignee, pauses=[],
            update_event_at=ch.first_ts,
            recurrence_of=recurrence_of, on_recurrence=getattr(ch, "on_recurrence", "reopen"),
            verify_window=getattr(ch, "verify_window", None),
        ).on_conflict_do_nothing(
            # literal, as in the index: a bound parameter here stops PostgreSQL from matching
            # the partial index once psycopg prepares the statement (after 5 executions)
            index_elements=[tickets.c.fingerprint],
            index_where=sa.text(f"state IN {OPEN_STATES!r}")).returning(tickets.c.id)
        row = conn.execute(stmt).first()
        if row is None:
            return None
        new_id = int(row[0])
        self.add_event(new_id, ch.first_ts, f"rule:{ch.rule}", "opened", f"{ch.rule} firing",
                       {"value": ch.value, "team": team}, conn=conn)
        if assignee:
            self.add_event(new_id, now, "system", "assigned",
                           f"routed to {team}; assigned {self.policy.teams.teams[team].assign}",
                           {"from": None, "to": assignee}, conn=conn)
        return new_id

    def assign_for(self, conn: sa.Connection, facts: Facts,
                   rule_team: str | None) -> tuple[str | None, str | None]:
        """Team and member for a new ticket (routing and assignment policy, config/teams.yaml)."""
        chosen = route(self.policy.teams, facts, rule_team)
        if chosen is None:
            return None, None
        return chosen.team, pick_member(self.policy.teams, chosen,
                                        self.team_load(conn, chosen.team),
                                        self.last_assignee(conn, chosen.team))

    def device_inventory(self, conn: sa.Connection, site: str, device: str) -> Any:
        return conn.execute(sa.select(devices.c.inventory).where(
            devices.c.site == site, devices.c.device == device)).scalar()

    def insert_manual(self, conn: sa.Connection, values: dict[str, Any]) -> int:
        """A ticket opened by a person (a fault phoned in); its fingerprint is unique."""
        new_id = conn.execute(tickets.insert().values(**values).returning(tickets.c.id)).scalar()
        return int(new_id)  # type: ignore[arg-type]

    def add_events(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """THE place ticket changes are recorded (the timeline), in the caller's transaction.

        Whatever must accompany every recorded change atomically (e.g. a durable outbox row
        for external desks) belongs here, so no path can skip it.
        """
        if not rows:
            return
        ids = conn.execute(_ADD_EVENTS, rows).scalars().all()
        for r, event_id in zip(rows, ids, strict=True):
            # same transaction: the desks hear of this change exactly when it commits
            outbox.record(conn, r["ticket_id"], event_id, r["at"], r["actor"], r["kind"],
                          r["reason"], r["data"])

    def add_event(self, ticket_id: int, at: float, actor: str, kind: str, reason: str,
                  data: dict[str, Any] | None = None, conn: sa.Connection | None = None) -> None:
        """Record one change on a ticket's timeline (in `conn`'s transaction, or its own)."""
        row = _event_row(ticket_id, at, actor, kind, reason, data)
        if conn is None:
            with self.engine.begin() as own:
                self.add_events(own, [row])
        else:
            self.add_events(conn, [row])

    def update_ticket(self, conn: sa.Connection, ticket_id: int, values: dict[str, Any],
                      expect_state: str | None = None) -> bool:
        """Apply `values`; with `expect_state`, only if nobody changed the state meanwhile."""
        if expect_state is None:
            return conn.execute(_UPDATE, {**values, "b_id": ticket_id}).rowcount == 1
        return conn.execute(_UPDATE_IF, {**values, "b_id": ticket_id, "b_state": expect_state}
                            ).rowcount == 1

    def ticket_for_update(self, conn: sa.Connection, ticket_id: int) -> dict[str, Any]:
        q = sa.select(tickets).where(tickets.c.id == ticket_id)
        if self.pg:
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None:
            raise TicketNotFound(ticket_id)
        return dict(row._mapping)

    def team_load(self, conn: sa.Connection, team: str | None) -> dict[str, int]:
        """Open tickets per assignee in `team`."""
        if team is None:
            return {}
        q = sa.select(tickets.c.assignee, sa.func.count()).where(
            tickets.c.team == team, tickets.c.state.in_(OPEN_STATES),
            tickets.c.assignee.is_not(None)).group_by(tickets.c.assignee)
        return {a: int(n) for a, n in conn.execute(q)}

    def last_assignee(self, conn: sa.Connection, team: str | None) -> str | None:
        if team is None:
            return None
        return conn.execute(sa.select(tickets.c.assignee).where(
            tickets.c.team == team, tickets.c.assignee.is_not(None)).order_by(
            tickets.c.id.desc()).limit(1)).scalar()

    def fired_steps(self, conn: sa.Connection, ids: Sequence[int]) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {i: set() for i in ids}
        for chunk in range(0, len(ids), 500):
            part = list(ids[chunk:chunk + 500])
            for tid, step in conn.execute(sa.select(escalations.c.ticket_id, escalations.c.step)
                                          .where(escalations.c.ticket_id.in_(part))):
                out[tid].add(step)
        return out

    def mark_fired(self, conn: sa.Connection, ticket_id: int, step: str, at: float) -> bool:
        """Claim an escalation step; False if it already fired (here or in another collector)."""
        stmt = self._insert(escalations).values(ticket_id=ticket_id, step=step, fired_at=at
                                                ).on_conflict_do_nothing().returning(
            escalations.c.step)
        return conn.execute(stmt).first() is not None

    # -- reading ------------------------------------------------------------------------------

    def get_ticket(self, ticket_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tickets).where(tickets.c.id == ticket_id)).first()
        if row is None:
            raise TicketNotFound(ticket_id)
        return dict(row._mapping)

    def list_tickets(self, state: str | None = None, limit: int = 1000, *,
                     team: str | None = None, assignee: str | None = None,
                     priority: str | None = None, site: str | None = None,
                     device: str | None = None, rule: str | None = None,
                     since: float | None = None, offset: int = 0,
                     oldest_first: bool = False,
                     sites: Collection[str] | None = None) -> list[dict[str, Any]]:
        """`sites`: only tickets of these sites (a desk user's scope); None: every site."""
        order = tickets.c.id if oldest_first else tickets.c.id.desc()
        q = sa.select(tickets).order_by(order).limit(limit).offset(offset)
        if sites is not None:
            q = q.where(tickets.c.site.in_(sorted(sites)))
        if state == "open":
            q = q.where(tickets.c.state.in_(OPEN_STATES))
        elif state:
            q = q.where(tickets.c.state == state)
        for col, val in ((tickets.c.team, team), (tickets.c.assignee, assignee),
                         (tickets.c.priority, priority), (tickets.c.site, site),
                         (tickets.c.device, device), (tickets.c.rule, rule)):
            if val is not None:
                q = q.where(col == val)
        if since is not None:
            q = q.where(tickets.c.opened_at >= since)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def count_open(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(
                tickets.c.state.in_(OPEN_STATES))).scalar_one())

    def timeline(self, ticket_id: int) -> list[dict[str, Any]]:
        q = sa.select(ticket_events).where(ticket_events.c.ticket_id == ticket_id).order_by(
            ticket_events.c.at, ticket_events.c.id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def events_since(self, since: float) -> list[dict[str, Any]]:
        q = sa.select(ticket_events).where(ticket_events.c.at >= since).order_by(
            ticket_events.c.at, ticket_events.c.id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def resolved_history(self, limit: int = CANDIDATES) -> list[dict[str, Any]]:
        """Recent tickets with a resolution note: the case library's candidates."""
        q = sa.select(tickets).where(tickets.c.resolution.is_not(None)).order_by(
            tickets.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def sequence_states(self, only: Iterable[tuple[str, str]] | None = None
                        ) -> dict[tuple[str, str], SeqState]:
        """Every device's sequence accounting (or `only` these devices'), for a collector
        (re)starting or a worker undoing what a message it set aside did to it."""
        q = sa.select(devices.c.site, devices.c.device, devices.c.last_seq, devices.c.last_seen,
                      *(getattr(devices.c, c) for c in _SEQ_COLUMNS))
        if only is not None:
            q = q.where(sa.tuple_(devices.c.site, devices.c.device).in_(list(only)))
        with self.engine.connect() as conn:
            return {(r.site, r.device): SeqState.from_columns(dict(r._mapping))
                    for r in conn.execute(q)}

    def list_devices(self) -> list[dict[str, Any]]:
        q = sa.select(devices).order_by(devices.c.site, devices.c.device)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def get_device(self, site: str | None, device: str) -> list[dict[str, Any]]:
        q = sa.select(devices).where(devices.c.device == device)
        if site is not None:
            q = q.where(devices.c.site == site)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]


def device_type_of(inventory: Any) -> str | None:
    """The device's type from its inventory (`type`, else `kind`, else `model`), if known."""
    if isinstance(inventory, dict):
        for key in ("type", "device_type", "kind", "model"):
            v = inventory.get(key)
            if isinstance(v, str) and v:
                return v[:64]
    return None


def _event_row(ticket_id: int, at: float, actor: str, kind: str, reason: str,
               data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"ticket_id": ticket_id, "at": at, "actor": actor, "kind": kind, "reason": reason,
            "data": data}


# Built once, the SET clause from the parameters' keys: building a statement per call cost
# more than running it (profiled: the inbound webhook path, issue 16).
_UPDATE = tickets.update().where(tickets.c.id == sa.bindparam("b_id"))
_UPDATE_IF = _UPDATE.where(tickets.c.state == sa.bindparam("b_state"))
_ADD_EVENTS = ticket_events.insert().returning(ticket_events.c.id, sort_by_parameter_order=True)

_OPEN_COLS = (tickets.c.id, tickets.c.fingerprint, tickets.c.state, tickets.c.update_event_at,
              tickets.c.pauses, tickets.c.waiting_since)

# Repeats merged per ticket, written with one executemany (bind names avoid column names).
_REPEAT = tickets.update().where(tickets.c.id == sa.bindparam("b_id")).values(
    occurrences=tickets.c.occurrences + sa.bindparam("b_n", type_=sa.Integer),
    last_seen=sa.bindparam("b_ts", type_=sa.Float),
    last_value=sa.bindparam("b_v", type_=sa.Float),
    updated_at=sa.bindparam("b_now", type_=sa.Float),
    update_event_at=sa.func.coalesce(sa.bindparam("b_uea", type_=sa.Float),
                                     tickets.c.update_event_at))


@dataclass(frozen=True)
class _Live:
    """An open ticket as `_apply` tracks it (the columns of _OPEN_COLS)."""

    id: int
    fingerprint: str
    state: str
    update_event_at: float | None
    pauses: list[Any]
    waiting_since: float | None
