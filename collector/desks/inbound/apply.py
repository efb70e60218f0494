"""What a desk's change does to the fieldwatch ticket: `plan` decides (pure), `apply` runs it in
one transaction with the replay log.

Edges, not levels. A desk's payload says how its ticket is *now*; fieldwatch acts on what
changed at the desk since it last looked (`desk_sync`: the desk's state, its time, its
assignee), never on a mere difference — a desk that has not yet heard of a fieldwatch change
(its outbox row still on the way, or dead) must not undo it. Before anything is seen, a
desk's ticket is taken to be open, as fieldwatch created it.

    desk state now ≠ last seen      fieldwatch ticket          does
    resolved                        open, acked, in progress   resolve
    open / acknowledged, was        resolved, closed           reopen (and ack when
      resolved (reopened there)                                 acknowledged)
    acknowledged                    open, reopened             acknowledge
    assignee changed                not closed                 assign
    a comment not seen before, not our own note (`[fieldwatch:…]`)        comment

The conflict rule (docs/desks.md): the latest change wins, each side by its own clock. A
desk's state change applies only when it is newer than the start of the ticket's current
phase in fieldwatch — a resolve older than a reopen here (a recurrence) is ignored, as is a
reopen older than a close here; a close here is final unless the desk reopens after it, and a
`wont_fix` close is final whatever the desk says. An ignored change is counted as a conflict;
fieldwatch's own later change reaches the desk through the outbox, so both sides converge. A
payload older than what the desk already told (webhooks overtaking each other) is stale.
Desk times later than fieldwatch's clock count as now; fieldwatch records each change at the
desk's time (an ack at 10:05 answered the ticket at 10:05, however late we hear of it), but
never before the ticket's current phase began.

Every timeline event carries `origin: <desk>`: outbox.record queues it for every desk but
that one — a change never echoes back where it came from.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.desks.inbound.model import Delivery, Inbound, ours
from fieldwatch.collector.desks.inbound.sync import Sync, save
from fieldwatch.collector.store.schema import (
    desk_links,
    desk_sync,
    inbound_seen,
    ticket_events,
    tickets,
)
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.tickets.actions import plan_action
from fieldwatch.collector.tickets.cases import Resolution
from sqlalchemy.dialects import postgresql, sqlite

from fieldwatch.errors import TransitionRefused

DONE = ("resolved", "closed")
EARLIEST = float("-inf")


@dataclass(frozen=True)
class Step:
    action: str  # ack | reopen | assign | comment | resolve (tickets/actions.py)
    text: str
    assignee: str | None = None
    note: Resolution | None = None


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    sync: Sync
    outcome: str  # applied | nothing | stale | conflict
    why: str = ""


def plan(ticket: Mapping[str, Any], phase_since: float, last: Sync | None, ch: Inbound,
         comment_new: bool) -> Plan:
    """The steps `ch` asks of `ticket`, whose current phase (open, or resolved/closed) began at
    `phase_since`; `last` is what the desk said before, `comment_new` whether its comment is
    one not applied yet."""
    last = last or Sync()
    prev = last.status or "open"
    prev_at = EARLIEST if last.status_at is None else last.status_at
    says = ch.status is not None or ch.assignee is not None
    stale = says and ch.at < prev_at
    state, desk = ticket["state"], ch.desk
    moves: list[Step] = []  # reopen, acknowledge: before the rest
    finish: list[Step] = []  # resolve: after the rest
    conflict = ""
    status = None if stale else ch.status
    if status is not None and status != prev:
        if status == "resolved" and state not in DONE:
            if ch.at >= phase_since:
                fix = ch.resolution or f"resolved in {desk} by {ch.actor}"
                finish.append(Step("resolve", fix[:4000], note=Resolution(
                    cause=f"resolved in {desk}"[:200], fix=fix[:4000])))
            else:
                conflict = f"{desk} resolved it before it was (re)opened here"
        elif status != "resolved" and state in DONE and prev == "resolved":
            if ch.at < phase_since:
                conflict = f"{state} here after {desk} reopened it"
            elif ticket.get("close_reason") == "wont_fix":
                conflict = "closed here as won't fix: final"
            else:
                moves.append(Step("reopen", f"reopened in {desk} by {ch.actor}"))
                if status == "acknowledged":
                    moves.append(Step("ack", f"acknowledged in {desk}"))
        elif status == "acknowledged" and state in ("open", "reopened"):
            if ch.at >= phase_since:
                moves.append(Step("ack", f"acknowledged in {desk}"))
            else:
                conflict = f"{desk} acknowledged it before it was reopened here"
    middle: list[Step] = []
    now_state = "reopened" if moves and moves[0].action == "reopen" else state
    if (not stale and ch.assignee and ch.assignee != last.assignee
            and ch.assignee != ticket.get("assignee") and now_state != "closed"):
        middle.append(Step("assign", f"assigned in {desk}", assignee=ch.assignee[:128]))
    if ch.comment is not None and comment_new and not ours(ch.comment.text):
        middle.append(Step("comment", ch.comment.text))
    steps = (*moves, *middle, *finish)
    sync = Sync(status=ch.status if ch.status is not None and not stale else last.status,
                status_at=max(prev_at, ch.at) if says and not stale else last.status_at,
                assignee=ch.assignee if ch.assignee is not None and not stale
                else last.assignee,
                alias=ch.alias or last.alias)
    outcome = ("applied" if steps else "conflict" if conflict else "stale" if stale
               else "nothing")
    return Plan(steps, sync, outcome, conflict)


# -- the database step -------------------------------------------------------------------------

@dataclass
class Result:
    replay: bool = False
    outcomes: dict[str, int] = field(default_factory=dict)  # applied, nothing, unknown, …
    tickets: list[int] = field(default_factory=list)  # the tickets changed

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


# Statements built once (per dialect where it matters), parameters bound at execution:
# constructing them per webhook cost more CPU than running them (profiled, issue 16).
_SEEN = {name: d.insert(inbound_seen).on_conflict_do_nothing().returning(inbound_seen.c.key)
         for name, d in (("postgresql", postgresql), ("sqlite", sqlite))}
_BY_EXTERNAL = sa.select(desk_links.c.ticket_id).where(
    desk_links.c.desk == sa.bindparam("b_desk"),
    desk_links.c.external_id == sa.bindparam("b_ext")).limit(1)


def _first_seen(conn: sa.Connection, desk: str, key: str, now: float) -> bool:
    """Record `key` for `desk`; False when it was there already (a replay)."""
    return conn.execute(_SEEN[conn.dialect.name], {"desk": desk, "key": key[:200],
                                                   "seen_at": now}).first() is not None


def find_ticket(conn: sa.Connection, instance: str, ch: Inbound) -> int | None:
    """The fieldwatch ticket a desk's ticket is: by the stored external id, by an alias seen
    before, or by fieldwatch's reference in the payload — unless the ticket is linked to a
    different external ticket of that desk (a label copied onto another issue)."""
    if ch.external_id:
        tid = conn.execute(_BY_EXTERNAL, {"b_desk": ch.desk, "b_ext": ch.external_id}).scalar()
        if tid is not None:
            return int(tid)
    if ch.alias:
        tid = conn.execute(sa.select(desk_sync.c.ticket_id).where(
            desk_sync.c.desk == ch.desk, desk_sync.c.alias == ch.alias).limit(1)).scalar()
        if tid is not None:
            return int(tid)
    pattern = re.compile(rf"{re.escape(instance)}-(\d{{1,12}})")
    for ref in ch.references:
        m = pattern.fullmatch(ref)
        if m is None:
            continue
        tid = int(m.group(1))
        linked = conn.execute(sa.select(desk_links.c.external_id).where(
            desk_links.c.ticket_id == tid, desk_links.c.desk == ch.desk)).scalar()
        if linked is not None and ch.external_id and linked != ch.external_id:
            continue
        return tid
    return None


def phase_since(t: Mapping[str, Any], reopened: float | None) -> float:
    """When fieldwatch last turned the ticket against the desk: its resolve or close, or its
    reopening — the desk's changes before it are overtaken. A first life has no such time:
    whatever the desk did to its ticket, it did to this one (clocks apart)."""
    if t["state"] in DONE:
        return max(t.get("resolved_at") or EARLIEST, t.get("closed_at") or EARLIEST)
    return EARLIEST if reopened is None else float(reopened)


_REOPENED = (sa.select(sa.func.max(ticket_events.c.at))
             .where(ticket_events.c.ticket_id == tickets.c.id,
                    ticket_events.c.kind == "reopened").scalar_subquery().label("fw_reopened"))


_LOAD = (sa.select(tickets, _REOPENED, desk_sync.c.status.label("fw_status"),
                   desk_sync.c.status_at.label("fw_status_at"),
                   desk_sync.c.assignee.label("fw_assignee"), desk_sync.c.alias.label("fw_alias"),
                   desk_sync.c.synced_at.label("fw_synced"))
         .select_from(tickets.outerjoin(desk_sync, sa.and_(
             desk_sync.c.ticket_id == tickets.c.id, desk_sync.c.desk == sa.bindparam("b_desk"))))
         .where(tickets.c.id == sa.bindparam("b_id")))
_LOAD_LOCKED = _LOAD.with_for_update(of=tickets)


def _load(conn: sa.Connection, tid: int, desk: str
          ) -> tuple[dict[str, Any], float | None, Sync | None] | None:
    """The ticket (locked on PostgreSQL), its last reopening and what the desk said before,
    in one statement; None when there is no such ticket."""
    q = _LOAD_LOCKED if conn.dialect.name == "postgresql" else _LOAD
    found = conn.execute(q, {"b_desk": desk, "b_id": tid}).mappings().first()
    if found is None:
        return None
    row = dict(found)
    last = None if row.pop("fw_synced") is None else Sync(
        row.pop("fw_status"), row.pop("fw_status_at"), row.pop("fw_assignee"),
        row.pop("fw_alias"))
    reopened = row.pop("fw_reopened")
    return {k: v for k, v in row.items() if not k.startswith("fw_")}, reopened, last


def _run(store: Store, conn: sa.Connection, t: dict[str, Any], p: Plan, ch: Inbound,
         when: float, now: float) -> str:
    """The plan's steps through the ticket actions, dated `when`, under a savepoint: all or
    none."""
    actor, mark = f"{ch.desk}:{ch.actor}"[:128], _mark(ch)
    # One step writes nothing unless it succeeds (the ticket is locked): a savepoint only
    # for several, or for a reopen, which the one-open-ticket-per-fault index may refuse.
    several = len(p.steps) > 1 or p.steps[0].action == "reopen"
    try:
        with conn.begin_nested() if several else contextlib.nullcontext():
            for step in p.steps:
                up = plan_action(t, step.action, when, text=step.text, assignee=step.assignee,
                                 note=step.note)
                up.values["updated_at"] = now
                if not store.update_ticket(conn, t["id"], up.values, expect_state=t["state"]):
                    raise TransitionRefused("the ticket changed meanwhile")
                for kind, why, data in up.events:
                    store.add_event(t["id"], when, actor, kind, why, {**(data or {}), **mark},
                                    conn=conn)
                t.update(up.values)
    except sa.exc.IntegrityError:  # the partial unique index: one open ticket per fault
        return "another ticket is open for this fault"
    except TransitionRefused as exc:
        return str(exc)[:200]
    return ""


def _mark(ch: Inbound) -> dict[str, Any]:
    """On every timeline event a desk's change makes: where it came from (the outbox skips
    that desk), the desk's name for the event and its time."""
    return {"origin": ch.desk, "desk_event": ch.kind[:64], "desk_at": ch.at}


def apply(store: Store, instance: str, delivery: Delivery | None,
          changes: Sequence[Inbound], now: float) -> Result:
    """Apply what a desk reported, in one transaction: nothing if `delivery` was applied
    before. A reconcile passes no delivery: its changes are edges against `desk_sync`, so
    reading the same state twice does nothing the second time."""
    result = Result()
    with store.transaction() as conn:
        if delivery is not None and changes and not _first_seen(
                conn, changes[0].desk, delivery.key, now):
            result.replay = True
            return result
        for ch in changes:
            if ch.at > now:  # a desk's clock ahead of ours: its change happened by now
                ch = replace(ch, at=now)
            tid = find_ticket(conn, instance, ch)
            if tid is None:
                result.count("unknown")
                continue
            loaded = _load(conn, tid, ch.desk)
            if loaded is None:  # a reference to a ticket this database never had
                result.count("unknown")
                continue
            t, reopened, last = loaded
            new = ch.comment is not None and _first_seen(conn, ch.desk,
                                                         f"comment:{ch.comment.id}", now)
            since = phase_since(t, reopened)
            p = plan(t, since, last, ch, new)
            outcome = p.outcome
            # dated by the desk's clock: an ack there at 10:05 answered at 10:05, however late
            # fieldwatch hears of it — never before the ticket's phase began, nor in the future
            when = min(max(ch.at, since, t["opened_at"]), now)
            why = p.why
            refused = _run(store, conn, dict(t), p, ch, when, now) if p.steps else ""
            if refused:
                outcome, why = "conflict", refused  # the state change cannot be made
                said = tuple(s for s in p.steps if s.action == "comment")  # the words can
                if said and not _run(store, conn, t, replace(p, steps=said), ch, when, now):
                    result.tickets.append(tid)
            elif p.steps:
                result.tickets.append(tid)
            if outcome == "conflict":  # why the desk and fieldwatch now disagree, on the ticket
                store.add_event(tid, when, f"{ch.desk}:{ch.actor}"[:128], "desk_conflict",
                                f"{ch.desk} says {ch.status}; kept {t['state']}: {why}",
                                _mark(ch), conn=conn)
            save(conn, tid, ch.desk, p.sync, now)
            result.count(outcome)
    return result


def prune(store: Store, before: float) -> int:
    """Forget deliveries seen before `before` (older ones are refused as too old anyway)."""
    with store.transaction() as conn:
        return conn.execute(inbound_seen.delete().where(inbound_seen.c.seen_at < before)
                            ).rowcount
