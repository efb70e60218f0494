"""The durable outbox: ticket changes waiting for external desks, and the worker that delivers
them.

`record` runs inside the transaction that changes a ticket (the store calls it where it writes
the timeline event), so a change and its deliveries commit together or not at all. The worker
takes, per desk, the oldest undelivered row of each ticket (order per ticket), marks it as being
sent, calls the desk, and records the outcome: delivered, retry later (exponential backoff with
jitter, or the desk's Retry-After), or dead (the desk's answer kept; later changes of that
ticket wait behind it until `fieldwatch outbox retry`). A crash between sending and recording
leaves `sending_since` set: the next attempt is marked unclear and the adapter looks the ticket
up instead of creating a second one — at-least-once delivery made exactly-once.

Each item of a round is settled on its own: an adapter that raises something other than a
DeskError (a bug, a ValueError from a header it cannot build) makes that item dead, and an
outcome the database will not take (a value too long for its column) is recorded as dead on its
own, so one bad item never leaves its neighbours marked as being sent, to be sent again.

A change a desk made (desks/inbound: its events carry `origin: <desk>`) is queued for every
desk but that one; a delivered state change is remembered as the desk's state (`desk_sync`),
so the desk's later changes are read as edges against what it was told.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.desks.config import DeskBase, RetryPolicy
from fieldwatch.collector.desks.inbound.sync import told
from fieldwatch.collector.desks.model import Action, Change, Desk, Receipt
from fieldwatch.collector.store.failures import log_failure
from fieldwatch.collector.store.schema import (
    desk_links,
    outbox,
    outbox_desks,
    outbox_leases,
    tickets,
)
from fieldwatch.collector.telemetry.stats import Stats
from sqlalchemy.dialects import postgresql, sqlite

from fieldwatch.clock import Clock
from fieldwatch.errors import DeskError, DeskRejected, DeskUnavailable

log = logging.getLogger(__name__)

# Timeline event kinds a desk hears of, and as what. Kinds not listed (alert repeats, SLA
# bookkeeping) stay in fieldwatch: a desk gets the ticket's story, not every sample.
EVENT_ACTIONS: dict[str, Action] = {
    "opened": "open",
    "acknowledged": "acknowledge",
    "resolved": "resolve", "closed": "close", "reopened": "reopen",
    "comment": "update", "assigned": "update", "refired": "update", "recurred": "update",
    "alert_cleared": "update", "in_progress": "update", "waiting": "update",
    "resumed": "update", "priority_changed": "update", "diagnostics": "update",
    # remote diagnostics (collector/diag): results, refusals, approvals, on-site escalation
    "diag_result": "update", "diag_refused": "update", "diag_no_response": "update",
    "approval": "update", "needs_onsite": "update",
    "diag_onsite": "update",
    "sla_escalation": "escalate",
}


def action_for(kind: str) -> Action | None:
    return EVENT_ACTIONS.get(kind)


def reference(instance: str, ticket_id: int) -> str:
    return f"{instance}-{ticket_id}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


# -- writing, inside the ticket's transaction --------------------------------------------------

# built once: constructing a statement per call cost more than running it (profiled, issue 16)
_DESKS = sa.select(outbox_desks).where(outbox_desks.c.enabled)
_TICKET = sa.select(tickets).where(tickets.c.id == sa.bindparam("b_id"))
_INSERT = outbox.insert()


def record(conn: sa.Connection, ticket_id: int, event_id: int | None, at: float, actor: str,
           kind: str, reason: str = "", data: Mapping[str, Any] | None = None) -> int:
    """Queue this ticket change for every registered desk that wants it; returns rows added."""
    action = action_for(kind)
    if action is None:
        return 0
    desks = conn.execute(_DESKS).all()
    if not desks:
        return 0
    row = conn.execute(_TICKET, {"b_id": ticket_id}).mappings().first()
    if row is None:
        return 0
    snapshot = _jsonable(dict(row))
    event = {"id": event_id, "kind": kind, "at": at, "actor": actor, "reason": reason,
             "data": _jsonable(dict(data)) if data else None}
    rows = []
    origin = data.get("origin") if data else None  # a change a desk made (desks/inbound)
    for d in desks:
        if action not in d.actions or (d.teams and snapshot.get("team") not in d.teams):
            continue
        if d.name == origin:
            continue  # it came from this desk: echoing it back would ping-pong
        ref = reference(d.instance, ticket_id)
        rows.append({"desk": d.name, "ticket_id": ticket_id, "action": action,
                     "change_key": f"{ref}-{event_id if event_id is not None else int(at * 1e6)}",
                     "payload": {"reference": ref, "ticket": snapshot, "event": event},
                     "state": "pending", "created_at": at, "next_at": 0.0})
    if rows:
        conn.execute(_INSERT, rows)
    return len(rows)


def register_desks(engine: sa.Engine, instance: str, desks: Sequence[DeskBase],
                   now: float) -> None:
    """Make these the desks changes fan out to (others stop getting new rows)."""
    with engine.begin() as conn:
        conn.execute(outbox_desks.update().values(enabled=False))
        for d in desks:
            values = {"actions": list(d.actions), "teams": list(d.teams), "enabled": True,
                      "instance": instance}
            done = conn.execute(outbox_desks.update().where(outbox_desks.c.name == d.name)
                                .values(**values)).rowcount
            if not done:
                conn.execute(outbox_desks.insert().values(name=d.name, registered_at=now,
                                                          **values))


def external_tickets(engine: sa.Engine, ticket_id: int) -> dict[str, dict[str, Any]]:
    """The external tickets of one fieldwatch ticket: desk → {external_id, url}."""
    q = sa.select(desk_links).where(desk_links.c.ticket_id == ticket_id)
    with engine.connect() as conn:
        return {r.desk: {"external_id": r.external_id, "url": r.url} for r in conn.execute(q)}


def _text(value: str | None, limit: int = 2000) -> str | None:
    """A desk's text as the database takes it: no NUL (PostgreSQL refuses it), bounded."""
    return None if value is None else value.replace("\x00", "")[:limit]


def _cause(exc: sa.exc.SQLAlchemyError) -> str:
    """The driver's complaint without SQLAlchemy's copy of the statement and parameters."""
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).splitlines()[0] if str(orig) else ''}"[:300]


# -- backoff, pure -----------------------------------------------------------------------------

def backoff(attempts: int, policy: RetryPolicy, u: float,
            retry_after: float | None = None) -> float:
    """Seconds before attempt `attempts + 1`; `u` in [0, 1) is the jitter draw."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_retry_after)
    delay = min(policy.max_delay, policy.base * policy.factor ** max(attempts - 1, 0))
    return delay * (1.0 - policy.jitter * u)


# -- the queue ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pending:
    id: int
    desk: str
    ticket_id: int
    attempts: int
    change: Change


@dataclass(frozen=True)
class Outcome:
    """One delivery attempt's result: a receipt, or the error (and when to try again)."""

    item: Pending
    receipt: Receipt | None = None
    error: DeskError | None = None
    next_at: float = 0.0


class Queue:
    """The outbox table's operations; every method is one short transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def due(self, desk: str, now: float, limit: int = 100) -> list[Pending]:
        """The oldest undelivered change of each ticket whose time has come, oldest first; a
        dead row holds the later changes of its ticket back."""
        earlier = outbox.alias("earlier")
        blocked = sa.exists().where(
            earlier.c.desk == outbox.c.desk, earlier.c.ticket_id == outbox.c.ticket_id,
            earlier.c.state.in_(("pending", "dead")), earlier.c.id < outbox.c.id)
        q = (sa.select(outbox, desk_links.c.external_id)
             .select_from(outbox.outerjoin(desk_links, sa.and_(
                 desk_links.c.ticket_id == outbox.c.ticket_id, desk_links.c.desk == outbox.c.desk)))
             .where(outbox.c.desk == desk, outbox.c.state == "pending", outbox.c.next_at <= now,
                    ~blocked)
             .order_by(outbox.c.id).limit(limit))
        with self.engine.begin() as conn:
            rows = conn.execute(q).mappings().all()
            if rows:
                # Written before sending: a crash from here on leaves the mark, and the next
                # attempt knows the desk may already have this change.
                conn.execute(outbox.update().where(outbox.c.id.in_([r["id"] for r in rows]))
                             .values(sending_since=now))
        return [Pending(r["id"], r["desk"], r["ticket_id"], r["attempts"], Change(
            key=r["change_key"], reference=r["payload"]["reference"], action=r["action"],
            ticket=r["payload"]["ticket"], event=r["payload"]["event"],
            external_id=r["external_id"],
            unclear=bool(r["unclear"] or r["sending_since"] is not None))) for r in rows]

    def settle(self, outcomes: Sequence[Outcome], now: float) -> int:
        """Record what a round of deliveries came to: in one transaction when the database
        takes it, else item by item, an item it refuses recorded as dead. Returns how many
        were refused that way. A store that is down raises: the round stays marked as being
        sent, and its next attempt looks first."""
        if not outcomes:
            return 0
        try:
            with self.engine.begin() as conn:
                self._settle(conn, outcomes, now)
            return 0
        except sa.exc.OperationalError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            log.warning("outbox: a round of %d outcomes could not be recorded at once (%s); "
                        "recording them one by one", len(outcomes), _cause(exc))
        refused = 0
        for o in outcomes:
            try:
                with self.engine.begin() as conn:
                    self._settle(conn, [o], now)
            except sa.exc.OperationalError:
                raise
            except sa.exc.SQLAlchemyError as exc:
                refused += 1
                self._unrecordable(o, exc)
        return refused

    def _settle(self, conn: sa.Connection, outcomes: Sequence[Outcome], now: float) -> None:
        done = [o for o in outcomes if o.receipt is not None]
        if done:  # the common case, as one executemany
            conn.execute(outbox.update().where(outbox.c.id == sa.bindparam("oid")).values(
                state="delivered", delivered_at=now, sending_since=None, last_error="",
                attempts=outbox.c.attempts + 1, receipt=sa.bindparam("r")),
                [{"oid": o.item.id, "r": {"external_id": _text(o.receipt.external_id),
                                          "url": _text(o.receipt.url),
                                          "detail": _text(o.receipt.detail)}}
                 for o in done if o.receipt is not None])
        told(conn, [(o.item.ticket_id, o.item.desk, o.item.change.action) for o in done], now)
        for o in outcomes:
            if o.receipt is not None:
                self._link(conn, o.item, o.receipt, now)
            elif isinstance(o.error, DeskUnavailable):
                self._retry_later(conn, o.item, o.error, o.next_at)
            elif o.error is not None:
                self._dead(conn, o.item, o.error)

    def _unrecordable(self, o: Outcome, exc: sa.exc.SQLAlchemyError) -> None:
        """Dead, with why: the database refused this item's outcome. A delivery that went
        through is flagged unclear, so a retry looks the ticket up before sending again."""
        why = f"the outcome could not be recorded: {_cause(exc)}"
        log.error("outbox: desk %s, change %s: %s (dead letter)", o.item.desk,
                  o.item.change.key, why)
        values: dict[str, Any] = {"state": "dead", "attempts": outbox.c.attempts + 1,
                                  "sending_since": None, "last_error": _text(why)}
        if o.receipt is not None:
            values["unclear"] = True
        with self.engine.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id == o.item.id).values(**values))

    def delivered(self, item: Pending, receipt: Receipt, now: float) -> None:
        self.settle([Outcome(item, receipt=receipt)], now)

    def retry_later(self, item: Pending, error: DeskUnavailable, next_at: float) -> None:
        self.settle([Outcome(item, error=error, next_at=next_at)], next_at)

    def dead(self, item: Pending, error: DeskRejected) -> None:
        self.settle([Outcome(item, error=error)], 0.0)

    @staticmethod
    def _link(conn: sa.Connection, item: Pending, receipt: Receipt, now: float) -> None:
        """Keep the desk's id for the ticket when it is new or changed."""
        if receipt.external_id and receipt.external_id != item.change.external_id:
            done = conn.execute(desk_links.update().where(
                desk_links.c.ticket_id == item.ticket_id, desk_links.c.desk == item.desk)
                .values(external_id=_text(receipt.external_id), url=_text(receipt.url))).rowcount
            if not done:
                conn.execute(desk_links.insert().values(
                    ticket_id=item.ticket_id, desk=item.desk, linked_at=now,
                    external_id=_text(receipt.external_id), url=_text(receipt.url)))

    @staticmethod
    def _retry_later(conn: sa.Connection, item: Pending, error: DeskUnavailable,
                     next_at: float) -> None:
        values: dict[str, Any] = {"attempts": outbox.c.attempts + 1, "next_at": next_at,
                                  "sending_since": None, "last_error": _text(str(error))}
        if error.unclear:
            values["unclear"] = True  # stays set until delivered: every retry looks first
        conn.execute(outbox.update().where(outbox.c.id == item.id).values(**values))

    @staticmethod
    def _dead(conn: sa.Connection, item: Pending, error: DeskError) -> None:
        conn.execute(outbox.update().where(outbox.c.id == item.id).values(
            state="dead", attempts=outbox.c.attempts + 1, sending_since=None,
            last_error=_text(str(error))))

    def lease(self, desk: str, owner: str, now: float, ttl: float) -> bool:
        """True when `owner` may deliver to `desk` until now + ttl (it held or took the lease):
        two collectors on one database never deliver the same rows."""
        with self.engine.begin() as conn:
            took = conn.execute(outbox_leases.update().where(
                outbox_leases.c.desk == desk,
                sa.or_(outbox_leases.c.owner == owner, outbox_leases.c.lease_until < now))
                .values(owner=owner, lease_until=now + ttl)).rowcount
            if took:
                return True
            insert = (postgresql.insert if self.engine.dialect.name == "postgresql"
                      else sqlite.insert)(outbox_leases)
            return conn.execute(insert.values(desk=desk, owner=owner, lease_until=now + ttl)
                                .on_conflict_do_nothing()
                                .returning(outbox_leases.c.desk)).first() is not None

    def release(self, desk: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(outbox_leases.update().where(
                outbox_leases.c.desk == desk, outbox_leases.c.owner == owner)
                .values(lease_until=0.0))

    def prune(self, before: float) -> int:
        """Forget delivered rows older than `before`; returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(outbox.delete().where(
                outbox.c.state == "delivered", outbox.c.delivered_at < before)).rowcount

    def next_due(self, desk: str) -> float | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.min(outbox.c.next_at)).where(
                outbox.c.desk == desk, outbox.c.state == "pending")).scalar()

    # -- for people: CLI and API ----------------------------------------------------------------

    def list(self, state: str | None = "dead", desk: str | None = None,
             ticket_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
        q = sa.select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        if state:
            q = q.where(outbox.c.state == state)
        if desk:
            q = q.where(outbox.c.desk == desk)
        if ticket_id is not None:
            q = q.where(outbox.c.ticket_id == ticket_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def counts(self) -> dict[str, dict[str, int]]:
        q = sa.select(outbox.c.desk, outbox.c.state, sa.func.count()).group_by(
            outbox.c.desk, outbox.c.state)
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for desk, state, n in conn.execute(q):
                out.setdefault(desk, {})[state] = n
        return out

    def retry(self, now: float, ids: Iterable[int] = (), desk: str | None = None) -> int:
        """Put dead letters back in the queue (all of a desk, or by id); returns how many."""
        q = outbox.update().where(outbox.c.state == "dead")
        ids = list(ids)
        if ids:
            q = q.where(outbox.c.id.in_(ids))
        if desk:
            q = q.where(outbox.c.desk == desk)
        with self.engine.begin() as conn:
            return conn.execute(q.values(state="pending", next_at=now, attempts=0)).rowcount

    def links(self, ticket_id: int) -> list[dict[str, Any]]:
        q = sa.select(desk_links).where(desk_links.c.ticket_id == ticket_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]


# -- the worker --------------------------------------------------------------------------------

class Worker:
    """One thread per desk; within a desk, up to `concurrency` tickets in flight at once."""

    def __init__(self, engine: sa.Engine, desks: Mapping[str, Desk], clock: Clock,
                 policy: RetryPolicy, stats: Stats | None = None, concurrency: int = 4,
                 poll: float = 0.2, rand: Callable[[], float] = random.random,
                 owner: str = "", lease: float = 30.0,
                 keep_delivered: float = 30 * 86400.0) -> None:
        self.queue = Queue(engine)
        self.desks, self.clock, self.policy = dict(desks), clock, policy
        self.stats = stats or Stats()
        self.concurrency, self.poll, self.rand = concurrency, poll, rand
        # stable across restarts of one collector, so it takes its own lease back at once
        self.owner = owner or f"{socket.gethostname()}/{os.getpid()}"
        self.lease, self.keep_delivered = lease, keep_delivered
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(name,), daemon=True,
                                          name=f"fieldwatch-outbox-{name}") for name in desks]
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency * len(self.desks)),
                                        thread_name_prefix="fieldwatch-deliver")

    def wake(self) -> None:
        """New rows were written: look now instead of at the next poll."""
        self._wake.set()

    def attempt(self, item: Pending) -> Outcome:
        """Deliver one change; the outcome is recorded by `settle` with the rest of its round.
        Never raises: whatever goes wrong is this item's outcome, not its round's."""
        desk = self.desks[item.desk]
        try:
            receipt = desk.deliver(item.change)
        except DeskUnavailable as exc:
            delay = backoff(item.attempts + 1, self.policy, self.rand(), exc.retry_after)
            self.stats.inc("outbox_retries_total", item.desk)
            log.warning("desk %s: change %s not delivered, retry in %.1fs: %s", item.desk,
                        item.change.key, delay, exc)
            return Outcome(item, error=exc, next_at=self.clock.now() + delay)
        except DeskRejected as exc:
            self.stats.inc("outbox_dead_total", item.desk)
            log.error("desk %s rejected change %s (dead letter): %s", item.desk,
                      item.change.key, exc)
            return Outcome(item, error=exc)
        except Exception as exc:  # noqa: BLE001 - this item's failure only: dead, logged, counted
            self.stats.inc("outbox_dead_total", item.desk)
            self.stats.inc("outbox_unexpected_total", item.desk)
            log.exception("desk %s failed on change %s unexpectedly (dead letter)", item.desk,
                          item.change.key)
            return Outcome(item, error=DeskRejected(
                f"unexpected {type(exc).__name__}: {exc}"[:2000]))
        self.stats.inc("outbox_delivered_total", item.desk)
        return Outcome(item, receipt=receipt)

    def run_once(self, desk: str, limit: int | None = None) -> int:
        """Deliver every change of `desk` due now (one per ticket, up to `limit`, default
        8 × concurrency) and record the outcomes in one transaction; returns how many were
        tried. Nothing when another collector holds the desk's lease."""
        if not self.queue.lease(desk, self.owner, self.clock.now(), self.lease):
            return 0
        items = self.queue.due(desk, self.clock.now(), limit or self.concurrency * 8)
        if self.concurrency == 1 or len(items) <= 1:
            outcomes = [self.attempt(item) for item in items]
        else:
            outcomes = list(self._pool.map(self.attempt, items))
        refused = self.queue.settle(outcomes, self.clock.now())
        if refused:
            self.stats.inc("outbox_dead_total", desk, refused)
            self.stats.inc("outbox_unrecordable_total", desk, refused)
        return len(items)

    def _run(self, desk: str) -> None:
        pruned_at, failures = 0.0, 0
        while not self._stop.is_set():
            try:
                tried = self.run_once(desk)
                now = self.clock.now()
                if now - pruned_at > 3600:
                    pruned_at = now
                    self.queue.prune(now - self.keep_delivered)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the store is down: keep the thread, retry
                failures += 1
                self.stats.inc("outbox_errors_total", desk)
                if failures == 1 or failures % 100 == 0:
                    log_failure(log, exc, "outbox worker for %s failed (%d in a row); retrying",
                                desk, failures)
                # A round that could not be recorded is sent again (as unclear) when it is
                # retried: back off, or a stuck store turns into a flood of repeats.
                self._stop.wait(min(30.0, self.poll * 2 ** min(failures, 10)))
                continue
            if tried:
                continue
            self._wake.wait(self.poll)
            self._wake.clear()
        try:
            self.queue.release(desk, self.owner)  # another collector may take over at once
        except Exception:  # noqa: BLE001 - the lease simply runs out
            log.warning("could not release the outbox lease of %s", desk)

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self._pool.shutdown(wait=True)
