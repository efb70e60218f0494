"""`desk_sync`: what fieldwatch last knew of each linked external ticket — the desk's state and
its time, its assignee, an alias — read and written inside the caller's transaction.

Two writers: an inbound change (webhook or reconcile, `apply`) records what the desk said, and
the outbox records what it told the desk (`told`: a delivered resolve means the desk's ticket
is resolved now), so a reopen in the desk is seen as one even when the desk's own echo of our
resolve was lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.store.schema import desk_sync
from sqlalchemy.dialects import postgresql, sqlite

# outbox actions that leave the desk's ticket in a known state
TOLD_STATES = {"open": "open", "reopen": "open", "resolve": "resolved", "close": "resolved"}


@dataclass(frozen=True)
class Sync:
    status: str | None = None  # open | acknowledged | resolved
    status_at: float | None = None  # the time of that state (the desk's clock, or ours)
    assignee: str | None = None
    alias: str | None = None


def insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def read(conn: sa.Connection, ticket_id: int, desk: str) -> Sync | None:
    r = conn.execute(sa.select(desk_sync).where(desk_sync.c.ticket_id == ticket_id,
                                                desk_sync.c.desk == desk)).first()
    return None if r is None else Sync(r.status, r.status_at, r.assignee, r.alias)


_KEPT = ("status", "status_at", "assignee", "alias", "synced_at")


def _upsert(dialect: Any) -> Any:
    q = dialect.insert(desk_sync)
    return q.on_conflict_do_update(index_elements=[desk_sync.c.ticket_id, desk_sync.c.desk],
                                   set_={k: q.excluded[k] for k in _KEPT})


# built once per dialect: constructing it per call cost more than running it (issue 16)
_SAVE = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}


def save(conn: sa.Connection, ticket_id: int, desk: str, s: Sync, now: float) -> None:
    conn.execute(_SAVE[conn.dialect.name], {
        "ticket_id": ticket_id, "desk": desk, "status": s.status, "status_at": s.status_at,
        "assignee": s.assignee, "alias": s.alias, "synced_at": now})


def told(conn: sa.Connection, delivered: Iterable[tuple[int, str, str]], now: float) -> None:
    """The outbox delivered these (ticket id, desk, action): the desk's state is ours now,
    unless the desk already said something newer."""
    for tid, desk, action in delivered:
        status = TOLD_STATES.get(action)
        if status is None:
            continue
        cur = read(conn, tid, desk) or Sync()
        if cur.status_at is not None and cur.status_at > now:
            continue
        save(conn, tid, desk, Sync(status, now, cur.assignee, cur.alias), now)


def touch(conn: sa.Connection, ticket_id: int, desk: str, now: float) -> None:
    """Heard of (or tried to): the reconcile reads this ticket last in its next rounds."""
    save(conn, ticket_id, desk, read(conn, ticket_id, desk) or Sync(), now)
