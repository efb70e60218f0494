"""The pages' reads, as SQL over the store's tables (SQLite and PostgreSQL alike). Changes never
happen here: every action goes through the ServiceDesk or the diagnostics/silence stores, as
the API's do. Each read is bounded."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.diag.schema import approvals, requests
from fieldwatch.collector.store.schema import devices, silences, ticket_events, tickets
from fieldwatch.collector.tickets.lifecycle import OPEN_STATES
from fieldwatch.collector.web.pages.filters import SEARCHED, Filters

MAX_QUEUE = 50_000  # open tickets ordered by urgency per request; beyond: the oldest are left out

# What ordering by urgency reads of every open ticket (the page's rows are read in full).
URGENCY_COLUMNS = (tickets.c.id, tickets.c.state, tickets.c.severity, tickets.c.priority,
                   tickets.c.sla_priority, tickets.c.opened_at, tickets.c.acknowledged_at,
                   tickets.c.resolved_at, tickets.c.waiting_since, tickets.c.pauses)


def _escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def where(f: Filters, sites: Collection[str] | None) -> list[sa.ColumnElement[bool]]:
    """The filters as SQL (the same as filters.matches), limited to the user's sites."""
    out: list[sa.ColumnElement[bool]] = [tickets.c.state.in_(f.states)]
    if sites is not None:
        out.append(tickets.c.site.in_(sorted(sites)))
    if f.site is not None:
        out.append(tickets.c.site == f.site)
    if f.team is not None:
        out.append(tickets.c.team == f.team)
    if f.priority is not None:
        out.append(sa.func.coalesce(tickets.c.priority, tickets.c.severity) == f.priority)
    if f.assignee == "-":
        out.append(sa.func.coalesce(tickets.c.assignee, "") == "")
    elif f.assignee is not None:
        out.append(tickets.c.assignee == f.assignee)
    tid = f.ticket_id()
    if tid is not None:
        out.append(tickets.c.id == tid)
    for word in f.words():
        pattern = f"%{_escape(word)}%"
        out.append(sa.or_(*(sa.func.coalesce(getattr(tickets.c, col), "").ilike(
            pattern, escape="\\") for col in SEARCHED)))
    return out


def urgency_rows(engine: sa.Engine, f: Filters, sites: Collection[str] | None
                 ) -> list[dict[str, Any]]:
    """Every ticket the filters keep (open states only), with what urgency needs. The hot
    read of the queue (5,000 rows on a big desk): plain tuples, pauses decoded only when a
    ticket has any."""
    cols = [sa.type_coerce(c, sa.Text).label(c.name) if c is tickets.c.pauses else c
            for c in URGENCY_COLUMNS]
    q = sa.select(*cols).where(*where(f, sites)).order_by(tickets.c.id.desc()).limit(MAX_QUEUE)
    names = [c.name for c in URGENCY_COLUMNS]
    with engine.connect() as conn:
        rows = [dict(zip(names, r, strict=True)) for r in conn.execute(q).all()]
    for r in rows:
        text = r["pauses"]
        r["pauses"] = json.loads(text) if text and text not in ("[]", "null") else []
    return rows


def newest_rows(engine: sa.Engine, f: Filters, sites: Collection[str] | None, limit: int,
                offset: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the tickets the filters keep, newest first, and how many there are."""
    conds = where(f, sites)
    with engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(tickets).where(
            *conds)).scalar_one())
        rows = [dict(r._mapping) for r in conn.execute(
            sa.select(tickets).where(*conds).order_by(tickets.c.id.desc()).limit(limit)
            .offset(offset))]
    return rows, total


def tickets_by_id(engine: sa.Engine, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    wanted = list(ids)
    out: dict[int, dict[str, Any]] = {}
    with engine.connect() as conn:
        for i in range(0, len(wanted), 500):
            for r in conn.execute(sa.select(tickets).where(tickets.c.id.in_(wanted[i:i + 500]))):
                out[r.id] = dict(r._mapping)
    return out


def choices(engine: sa.Engine, sites: Collection[str] | None) -> dict[str, list[str]]:
    """Values the filter form offers: sites (of known devices and open tickets), teams and
    assignees of open tickets."""
    with engine.connect() as conn:
        known = set(conn.execute(sa.select(devices.c.site).distinct()).scalars())
        live = conn.execute(sa.select(tickets.c.site, tickets.c.team, tickets.c.assignee)
                            .where(tickets.c.state.in_(OPEN_STATES)).distinct()).all()
    known |= {r.site for r in live}
    if sites is not None:
        known &= set(sites)
    return {"sites": sorted(known),
            "teams": sorted({r.team for r in live if r.team}),
            "assignees": sorted({r.assignee for r in live if r.assignee})}


def opening_event(engine: sa.Engine, ticket_id: int) -> dict[str, Any] | None:
    """The ticket's `opened` event (what it carried: the triggering value)."""
    q = sa.select(ticket_events).where(ticket_events.c.ticket_id == ticket_id,
                                       ticket_events.c.kind == "opened").order_by(
        ticket_events.c.id).limit(1)
    with engine.connect() as conn:
        row = conn.execute(q).first()
    return None if row is None else dict(row._mapping)


def device(engine: sa.Engine, site: str, name: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(devices).where(devices.c.site == site,
                                                    devices.c.device == name)).first()
    return None if row is None else dict(row._mapping)


def device_names(engine: sa.Engine, sites: Collection[str] | None, limit: int = 20_000
                 ) -> list[tuple[str, str]]:
    """(site, device) of known devices, for the intake form's suggestions."""
    q = sa.select(devices.c.site, devices.c.device).order_by(devices.c.site, devices.c.device)
    if sites is not None:
        q = q.where(devices.c.site.in_(sorted(sites)))
    with engine.connect() as conn:
        return [(r.site, r.device) for r in conn.execute(q.limit(limit))]


def device_tickets(engine: sa.Engine, site: str, name: str, limit: int = 100
                   ) -> tuple[list[dict[str, Any]], int]:
    """The device's newest tickets and how many it has had."""
    cond = (tickets.c.site == site, tickets.c.device == name)
    with engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(tickets).where(
            *cond)).scalar_one())
        rows = [dict(r._mapping) for r in conn.execute(
            sa.select(tickets).where(*cond).order_by(tickets.c.id.desc()).limit(limit))]
    return rows, total


def last_event(engine: sa.Engine) -> int:
    """The newest ticket event's id: every change of a ticket writes one (Store.add_event),
    so what the queue orders by cannot change while this stays the same."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(ticket_events.c.id))).scalar() or 0)


def live_version(engine: sa.Engine) -> str:
    """Changes when anything a page shows changes: a ticket event (every ticket change,
    approval and diagnostic result is one), a silence added or expired."""
    with engine.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(ticket_events.c.id))).scalar() or 0
        n, made, ended = conn.execute(sa.select(
            sa.func.count(), sa.func.max(silences.c.created_at),
            sa.func.max(silences.c.expired_at))).one()
    return f"{last}.{n}.{made or 0:.3f}.{ended or 0:.3f}"


def awaiting_approval(engine: sa.Engine, sites: Collection[str] | None, now: float,
                      limit: int = 200) -> list[dict[str, Any]]:
    """Open tickets where a diagnostic that changes the device was held back for an approval
    (`diag_skipped`), with the held-back check's name and whether an unused approval of it
    is already there."""
    q = (sa.select(ticket_events.c.ticket_id, ticket_events.c.at, ticket_events.c.reason,
                   tickets.c.site, tickets.c.device, tickets.c.title, tickets.c.customer,
                   tickets.c.priority, tickets.c.severity, tickets.c.state)
         .join(tickets, tickets.c.id == ticket_events.c.ticket_id)
         .where(ticket_events.c.kind == "diag_skipped", tickets.c.state.in_(OPEN_STATES))
         .order_by(ticket_events.c.id.desc()).limit(limit))
    if sites is not None:
        q = q.where(tickets.c.site.in_(sorted(sites)))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
        ids = sorted({r["ticket_id"] for r in rows})
        valid = set() if not ids else {(r.ticket_id, r.action) for r in conn.execute(
            sa.select(approvals.c.ticket_id, approvals.c.action).where(
                approvals.c.ticket_id.in_(ids), approvals.c.used_by_request.is_(None),
                approvals.c.expires >= now))}
    out, seen = [], set()
    for r in rows:
        # the dispatcher writes "<check> changes the device: ..." (diag/dispatch.py)
        check = (r["reason"] or "").split(" ", 1)[0]
        if not check or (r["ticket_id"], check) in seen:
            continue
        seen.add((r["ticket_id"], check))
        out.append({**r, "check": check, "approved": (r["ticket_id"], check) in valid})
    return out


def recent_approvals(engine: sa.Engine, sites: Collection[str] | None, limit: int = 50
                     ) -> list[dict[str, Any]]:
    q = (sa.select(approvals, tickets.c.site, tickets.c.device, tickets.c.title)
         .join(tickets, tickets.c.id == approvals.c.ticket_id)
         .order_by(approvals.c.id.desc()).limit(limit))
    if sites is not None:
        q = q.where(tickets.c.site.in_(sorted(sites)))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def diag_requests(engine: sa.Engine, ticket_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(requests).where(
            requests.c.ticket_id == ticket_id).order_by(requests.c.sent_at))]
