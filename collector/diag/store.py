"""Diagnostics in the database: approvals, requests and results, on-site marks — and their
entries on the ticket timeline (`ticket_events`), so a ticket tells the whole story.

Completing a request is a conditional update (`status = 'sent'`): when the collector and a
`fieldwatch diag run` both hear the same result, exactly one of them records it. A result is
bound to the device the request went to: another device that learnt the id cannot answer it.
"""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa
from fieldwatch.collector.diag.schema import approvals, metadata, onsite, requests
from fieldwatch.collector.store.schema import devices, messages, tickets
from fieldwatch.collector.store.store import Store

from fieldwatch import wire
from fieldwatch.errors import DiagnosticRefused

FAILED = ("failed", "timeout", "error")


class DiagStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.tickets = Store(engine)  # its add_event is THE way onto a timeline (desk outbox)
        metadata.create_all(engine, checkfirst=True)

    # -- timeline -----------------------------------------------------------------------------

    def _event(self, conn: sa.Connection, ticket_id: int, at: float, actor: str, kind: str,
               reason: str, data: dict[str, Any] | None = None) -> None:
        self.tickets.add_event(ticket_id, at, actor, kind, reason, data, conn=conn)

    def add_event(self, ticket_id: int, at: float, actor: str, kind: str, reason: str,
                  data: dict[str, Any] | None = None) -> None:
        with self.engine.begin() as conn:
            self._event(conn, ticket_id, at, actor, kind, reason, data)

    def ticket(self, ticket_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tickets).where(tickets.c.id == ticket_id)).first()
        return None if row is None else dict(row._mapping)

    def sites_of(self, device: str) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(
                sa.select(devices.c.site).where(devices.c.device == device))]

    # -- approvals ----------------------------------------------------------------------------

    def approve(self, ticket_id: int, action: str, by: str, now: float, ttl: float,
                on_behalf_of: str = "", note: str = "") -> int:
        """Record who authorized `action` on a ticket, when and on whose behalf."""
        if not by.strip():
            raise DiagnosticRefused("invalid_approval", "an approval must name who gives it")
        if self.ticket(ticket_id) is None:
            raise DiagnosticRefused("unknown_ticket", f"there is no ticket {ticket_id}")
        with self.engine.begin() as conn:
            row = conn.execute(approvals.insert().values(
                ticket_id=ticket_id, action=action, by=by, on_behalf_of=on_behalf_of,
                note=note, at=now, expires=now + ttl).returning(approvals.c.id)).first()
            assert row is not None
            who = f"{by} on behalf of {on_behalf_of}" if on_behalf_of else by
            self._event(conn, ticket_id, now, by, "approval", f"{who} approved {action}",
                        {"approval_id": row[0], "action": action, "by": by,
                         "on_behalf_of": on_behalf_of, "note": note, "expires": now + ttl})
        return int(row[0])

    def take_approval(self, ticket_id: int, action: str, request_id: str,
                      now: float) -> tuple[int, wire.Approval] | None:
        """Use up the oldest valid approval of `action` on the ticket, if there is one."""
        with self.engine.begin() as conn:
            for row in conn.execute(sa.select(approvals).where(
                    approvals.c.ticket_id == ticket_id, approvals.c.action == action,
                    approvals.c.used_by_request.is_(None), approvals.c.expires >= now
            ).order_by(approvals.c.id)).all():
                taken = conn.execute(approvals.update().where(
                    approvals.c.id == row.id, approvals.c.used_by_request.is_(None)
                ).values(used_by_request=request_id)).rowcount
                if taken:
                    return int(row.id), wire.Approval(action=action, by=row.by, at=row.at,
                                                      on_behalf_of=row.on_behalf_of,
                                                      ticket=ticket_id)
        return None

    def approvals(self, ticket_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(approvals).where(
                approvals.c.ticket_id == ticket_id).order_by(approvals.c.id))]

    # -- requests and results -----------------------------------------------------------------

    def sent(self, req: wire.DiagRequest, deadline: float, approval_id: int | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(requests.insert().values(
                id=req.id, ticket_id=req.ticket, site=req.site, device=req.device,
                check_name=req.check, args=dict(req.args), requested_by=req.requested_by,
                auto=req.auto, approval_id=approval_id, sent_at=req.issued, deadline=deadline,
                status="sent"))
            if req.ticket is not None:
                how = "automatically" if req.auto else f"by {req.requested_by}"
                self._event(conn, req.ticket, req.issued, req.requested_by or "system",
                            "diag_requested", f"{req.check} requested {how}",
                            {"id": req.id, "check": req.check, "args": dict(req.args),
                             "approval_id": approval_id})

    def complete(self, res: wire.DiagResult, now: float) -> dict[str, Any] | None:
        """Record a result; returns its request row (with `unsolicited` when no collector sent
        it), or None when it was already recorded. Refusals of requests nobody here sent are
        still put on the named ticket of that device: someone tried something. Raises
        DiagnosticRefused (`device_mismatch`) for a result from a device other than the one
        asked, recording nothing: the request still waits for its device's answer."""
        data = msgspec.to_builtins(res)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(requests).where(requests.c.id == res.id)).first()
            if row is not None and (row.site, row.device) != (res.site, res.device):
                raise DiagnosticRefused("device_mismatch", (
                    f"{res.site}/{res.device} answered request {res.id} "
                    f"sent to {row.site}/{row.device}"))
            if row is not None:
                done = conn.execute(requests.update().where(
                    requests.c.id == res.id, requests.c.status == "sent").values(
                    status=res.status, reason=res.reason, result=data, finished_at=now)).rowcount
                if not done:
                    return None
                if res.status == "refused" and row.approval_id is not None:
                    # nothing ran: the approval stays good for a corrected request
                    conn.execute(approvals.update().where(approvals.c.id == row.approval_id)
                                 .values(used_by_request=None))
                out = {**dict(row._mapping), "status": res.status, "unsolicited": False}
                ticket_id = row.ticket_id
            else:
                out = {"id": res.id, "ticket_id": None, "site": res.site, "device": res.device,
                       "check_name": res.check, "approval_id": None, "auto": False,
                       "status": res.status, "unsolicited": True}
                ticket_id = None
                if res.ticket is not None:
                    t = conn.execute(sa.select(tickets.c.site, tickets.c.device).where(
                        tickets.c.id == res.ticket)).first()
                    if t is not None and (t.site, t.device) == (res.site, res.device):
                        ticket_id = out["ticket_id"] = res.ticket
            if ticket_id is not None:
                self._event(conn, ticket_id, now, f"agent:{res.device}",
                            "diag_refused" if res.status == "refused" else "diag_result",
                            _summary(res, out["unsolicited"]),
                            {**data, "unsolicited": out["unsolicited"]})
        return out

    def overdue(self, now: float) -> list[dict[str, Any]]:
        """Requests past their deadline without a result, now marked `no_response`."""
        out = []
        with self.engine.begin() as conn:
            for row in conn.execute(sa.select(requests).where(
                    requests.c.status == "sent", requests.c.deadline < now)).all():
                done = conn.execute(requests.update().where(
                    requests.c.id == row.id, requests.c.status == "sent").values(
                    status="no_response", reason="no_response", finished_at=now)).rowcount
                if not done:
                    continue
                out.append({**dict(row._mapping), "status": "no_response"})
                if row.ticket_id is not None:
                    self._event(conn, row.ticket_id, now, "system", "diag_no_response",
                                f"{row.check_name}: no answer from {row.device}",
                                {"id": row.id, "check": row.check_name})
        return out

    def requests_of(self, ticket_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(requests).where(
                requests.c.ticket_id == ticket_id).order_by(requests.c.sent_at))]

    # -- on-site ------------------------------------------------------------------------------

    def mark_onsite(self, ticket_id: int, by: str, reason: str, checklist: list[str],
                    now: float) -> bool:
        """Mark a ticket needs_onsite (once; later calls add nothing). True when marked now."""
        with self.engine.begin() as conn:
            if conn.execute(sa.select(onsite.c.ticket_id).where(
                    onsite.c.ticket_id == ticket_id)).first() is not None:
                return False
            conn.execute(onsite.insert().values(ticket_id=ticket_id, at=now, by=by,
                                                reason=reason, checklist=checklist))
            self._event(conn, ticket_id, now, by, "needs_onsite", reason,
                        {"checklist": checklist})
        return True

    def onsite(self, ticket_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(onsite).where(onsite.c.ticket_id == ticket_id)).first()
        return None if row is None else dict(row._mapping)

    def visit_facts(self, ticket_id: int, recent: int = 20) -> dict[str, Any]:
        """What a checklist is built from: the ticket, its device, recent metrics, history."""
        t = self.ticket(ticket_id)
        if t is None:
            raise DiagnosticRefused("unknown_ticket", f"there is no ticket {ticket_id}")
        with self.engine.connect() as conn:
            dev = conn.execute(sa.select(devices).where(
                devices.c.site == t["site"], devices.c.device == t["device"])).first()
            payloads = [r[0] for r in conn.execute(
                sa.select(messages.c.payload).where(
                    messages.c.site == t["site"], messages.c.device == t["device"],
                    messages.c.kind == "metrics").order_by(messages.c.id.desc()).limit(recent))]
            history = [dict(r._mapping) for r in conn.execute(
                sa.select(tickets.c.id, tickets.c.rule, tickets.c.title, tickets.c.state,
                          tickets.c.opened_at, tickets.c.occurrences).where(
                    tickets.c.site == t["site"], tickets.c.device == t["device"],
                    tickets.c.id != ticket_id).order_by(tickets.c.id.desc()).limit(50))]
        return {"ticket": t, "device": None if dev is None else dict(dev._mapping),
                "metrics": payloads, "history": history, "diagnostics": self.requests_of(ticket_id)}


def _summary(res: wire.DiagResult, unsolicited: bool) -> str:
    if res.status == "refused":
        who = " (not sent by this collector)" if unsolicited else ""
        return f"{res.check} refused by the device: {res.reason}{who}"
    cut = f", output cut at {len(res.output.encode())} of {res.output_bytes} bytes" \
        if res.truncated else ""
    code = "" if res.exit_code is None else f", exit {res.exit_code}"
    return f"{res.check}: {res.status}{code} in {res.duration:.1f}s{cut}"
