"""The service-desk service layer: what the HTTP API and the CLI both call.

Decisions come from pure modules (tickets.actions, sla.clocks, tickets.kpi, tickets.cases); this
layer reads the clock once per call, runs each change in one store transaction, and sends
escalation notifications only after the step is committed.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from fieldwatch.collector.desks.outbox import external_tickets
from fieldwatch.collector.notify.notifier import Notification, Notifier
from fieldwatch.collector.sla.clocks import ClockView, clocks, due_steps
from fieldwatch.collector.sla.policy import PRIORITIES
from fieldwatch.collector.store.store import Store, device_type_of
from fieldwatch.collector.tickets import kpi
from fieldwatch.collector.tickets.actions import plan_action
from fieldwatch.collector.tickets.cases import Resolution, similar
from fieldwatch.collector.tickets.routing import Facts, recipients

from fieldwatch.clock import Clock
from fieldwatch.errors import DeskError, TransitionRefused
from fieldwatch.jsonout import event_json, iso, ticket_json

log = logging.getLogger(__name__)

Actions = Literal["ack", "start", "assign", "comment", "wait", "resume", "resolve", "close",
                  "reopen"]


@dataclass
class TickResult:
    closed: list[int] = field(default_factory=list)
    escalated: list[tuple[int, str]] = field(default_factory=list)
    notified: int = 0
    notify_failed: int = 0
    skipped: list[int] = field(default_factory=list)  # open tickets whose clocks can't run


class ServiceDesk:
    def __init__(self, store: Store, clock: Clock, notifier: Notifier | None = None) -> None:
        self.store, self.clock, self.notifier = store, clock, notifier
        self.policy = store.policy
        self._bad_clocks: set[int] = set()  # tickets whose clocks failed: logged once

    # -- reading ------------------------------------------------------------------------------

    def clocks(self, t: dict[str, Any], now: float) -> dict[str, ClockView] | None:
        """The ticket's SLA clocks, or None when its stored times defeat them (a timestamp of
        1e300 or NaN, a span beyond the calendar's reach): that ticket shows no clocks and
        escalates no more, logged once; every other ticket is unaffected."""
        try:
            views = clocks(self.policy.sla, t.get("sla_priority") or t["severity"],
                           t["opened_at"], t.get("acknowledged_at"), t.get("resolved_at"),
                           t.get("pauses") or [], now)
            if all(math.isfinite(x) for v in views.values()
                   for x in (v.elapsed, v.percent, v.due or 0.0)):
                return views
            problem = "a time out of range"
        except (ArithmeticError, ValueError, OSError, TypeError) as exc:
            problem = str(exc)
        if t["id"] not in self._bad_clocks:
            self._bad_clocks.add(t["id"])
            log.warning("ticket %s: SLA clocks cannot be computed from its stored times (%s); "
                        "it is listed without them and not escalated", t["id"], problem)
        return None

    def sla(self, t: dict[str, Any], now: float) -> dict[str, Any]:
        views = self.clocks(t, now)
        if views is None:
            return {}
        out = {}
        for name, v in views.items():
            d = v.as_json()
            d["due"], d["stopped_at"] = iso(v.due), iso(v.stopped_at)
            out[name] = d
        return out

    def list(self, state: str | None = None, limit: int = 100, offset: int = 0,
             **filters: Any) -> list[dict[str, Any]]:
        now = self.clock.now()
        rows = self.store.list_tickets(state, limit, offset=offset, **filters)
        return [{**ticket_json(t), "sla": self.sla(t, now)} for t in rows]

    def show(self, ticket_id: int, sites: Collection[str] | None = None) -> dict[str, Any]:
        """One ticket in full; `sites`: similar past cases only from these sites."""
        t = self.store.get_ticket(ticket_id)
        cases = [c for c in self.store.resolved_history() if sites is None or c["site"] in sites]
        return {**ticket_json(t), "inventory": t.get("inventory"),
                "sla": self.sla(t, self.clock.now()),
                "timeline": [event_json(e) for e in self.store.timeline(ticket_id)],
                "similar": similar(t, cases),
                "desks": external_tickets(self.store.engine, ticket_id)}

    def device_history(self, device: str, site: str | None = None,
                       sites: Collection[str] | None = None) -> dict[str, Any]:
        """Everything that happened to one device: its identity, inventory and tickets
        (`sites`: as far as a user who sees only these sites may know)."""
        if site is None and "/" in device:
            site, device = device.split("/", 1)
        known = [d for d in self.store.get_device(site, device)
                 if sites is None or d["site"] in sites]
        rows = self.store.list_tickets(None, 100_000, site=site, device=device,
                                       oldest_first=True, sites=sites)
        if not known and not rows:
            raise TransitionRefused(f"no device {site + '/' if site else ''}{device} is known")
        d = known[0] if known else {}
        return {"site": site or d.get("site") or (rows[0]["site"] if rows else None),
                "device": device, "inventory": d.get("inventory"),
                "first_seen": iso(d.get("first_seen")), "last_seen": iso(d.get("last_seen")),
                "tickets": [ticket_json(t) for t in rows]}

    def kpi(self, since: float, until: float | None = None,
            sites: Collection[str] | None = None) -> dict[str, Any]:
        """The KPIs of tickets opened since `since` (`sites`: of these sites only)."""
        now = self.clock.now()
        until = now if until is None else until
        rows = self.store.list_tickets(None, 10_000_000, since=since, oldest_first=True,
                                       sites=sites)
        out = kpi.compute(rows, self.policy.sla, since, until, now)  # SLA verdicts as of now
        out["since"], out["until"], out["as_of"] = iso(since), iso(until), iso(now)
        return out

    # -- changing -----------------------------------------------------------------------------

    def act(self, ticket_id: int, action: Actions, actor: str, *, text: str | None = None,
            assignee: str | None = None, note: Resolution | None = None,
            reason: str | None = None, satisfaction: int | None = None,
            sites: Collection[str] | None = None) -> dict[str, Any]:
        """Apply one person's action; TicketNotFound / TransitionRefused when it cannot be.
        Returns `show` (`sites`: the actor's, see `show`)."""
        actor = (actor or "").strip()[:128]
        if not actor:
            raise TransitionRefused("who is doing this? (actor must not be empty)")
        now = self.clock.now()
        with self.store.transaction() as conn:
            t = self.store.ticket_for_update(conn, ticket_id)
            up = plan_action(t, action, now, text=text, assignee=assignee, note=note,
                             reason=reason, satisfaction=satisfaction)
            try:
                ok = self.store.update_ticket(conn, ticket_id, up.values, expect_state=t["state"])
            except sa.exc.IntegrityError:  # the partial unique index: one open ticket per fault
                raise TransitionRefused("another ticket is already open for this fault; "
                                        "work on that one") from None
            if not ok:
                raise TransitionRefused("the ticket changed meanwhile; look again and retry")
            for kind, why, data in up.events:
                self.store.add_event(ticket_id, now, actor, kind, why, data, conn=conn)
        return self.show(ticket_id, sites)

    def create(self, *, device: str, title: str, actor: str, site: str = "manual",
               description: str = "", customer: str | None = None, priority: str = "P3",
               team: str | None = None, labels: dict[str, str] | None = None,
               sites: Collection[str] | None = None) -> dict[str, Any]:
        """A ticket opened by hand (a fault phoned in); it runs on the same SLA clocks.
        Returns `show` (`sites`: the actor's, see `show`)."""
        if priority not in PRIORITIES:
            raise TransitionRefused(f"priority must be one of {', '.join(PRIORITIES)}")
        for name, value, limit in (("device", device, 128), ("site", site, 128),
                                   ("title", title, 500), ("actor", actor, 128)):
            if not (value or "").strip() or len(value) > limit:
                raise TransitionRefused(f"{name} must be 1-{limit} characters")
        if team is not None and self.policy.teams.teams and team not in self.policy.teams.teams:
            raise TransitionRefused(f"no team named {team!r}")
        now = self.clock.now()
        labels = dict(labels or {})
        with self.store.transaction() as conn:
            inv = self.store.device_inventory(conn, site, device)
            dtype = device_type_of(inv)
            chosen_team, assignee = self.store.assign_for(
                conn, Facts("manual", site, device, dtype, labels), team)
            if team is not None:
                chosen_team = team
            tid = self.store.insert_manual(conn, {
                "fingerprint": "manual-" + uuid.uuid4().hex, "rule": "manual", "site": site,
                "device": device, "labels": labels, "severity": priority, "priority": priority,
                "sla_priority": priority, "state": "open", "title": title.strip(),
                "description": description, "team": chosen_team, "opened_at": now,
                "updated_at": now, "last_seen": now, "occurrences": 1, "source": "manual",
                "customer": customer, "device_type": dtype, "inventory": inv,
                "assignee": assignee, "pauses": [], "on_recurrence": "new"})
            self.store.add_event(tid, now, actor.strip(), "opened", "reported by hand",
                                 {"customer": customer, "team": chosen_team}, conn=conn)
            if assignee:
                self.store.add_event(tid, now, "system", "assigned", f"routed to {chosen_team}",
                                     {"from": None, "to": assignee}, conn=conn)
        return self.show(tid, sites)

    # -- time-driven (the collector's tick) --------------------------------------------------

    def tick(self) -> TickResult:
        """Close resolutions whose verification window passed; fire due escalation steps."""
        now = self.clock.now()
        result = TickResult()
        for t in self.store.list_tickets("resolved", 100_000, oldest_first=True):
            window = t.get("verify_window") or self.policy.sla.verify_window
            if t["resolved_at"] is None or t["resolved_at"] + window > now:
                continue
            with self.store.transaction() as conn:
                if self.store.update_ticket(conn, t["id"], {
                        "state": "closed", "closed_at": now, "close_reason": "verified",
                        "updated_at": now}, expect_state="resolved"):
                    self.store.add_event(t["id"], now, "system", "closed",
                                         "fault stayed away for the verification window",
                                         {"reason": "verified", "window_s": window}, conn=conn)
                    result.closed.append(t["id"])
        sends = self._escalate(now, result)
        for n in sends:
            self._send(n, result)
        return result

    def _escalate(self, now: float, result: TickResult) -> list[Notification]:
        steps = self.policy.sla.steps
        live = self.store.list_tickets("open", 1_000_000, oldest_first=True)
        if not steps or not live:
            return []
        with self.store.transaction() as conn:
            fired = self.store.fired_steps(conn, [t["id"] for t in live])
        sends = []
        for t in live:
            views = self.clocks(t, now)
            if views is None:
                result.skipped.append(t["id"])
                continue
            for step in due_steps(steps, views, fired[t["id"]],
                                  t.get("priority") or t["severity"]):
                n = self._fire_step(t, step, views[step.clock].percent, now)
                if n is not None:
                    result.escalated.append((t["id"], step.name))
                    if step.notify != "none":
                        sends.append(n)
        return sends

    def _fire_step(self, t: dict[str, Any], step: Any, percent: float,
                   now: float) -> Notification | None:
        with self.store.transaction() as conn:
            if not self.store.mark_fired(conn, t["id"], step.name, now):
                return None  # another collector fired it first
            cur = self.store.ticket_for_update(conn, t["id"])
            data: dict[str, Any] = {"step": step.name, "clock": step.clock,
                                    "percent": round(percent, 1), "notify": step.notify}
            prio = cur.get("priority") or cur["severity"]
            if step.raise_priority and prio != "P1":
                raised = PRIORITIES[PRIORITIES.index(prio) - 1]
                self.store.update_ticket(conn, t["id"], {"priority": raised, "updated_at": now})
                data["priority"] = {"from": prio, "to": raised}
                cur["priority"] = raised
            who = list(recipients(self.policy.teams, cur.get("team"), step.notify,
                                  cur.get("assignee"), now))
            data["recipients"] = who
            self.store.add_event(t["id"], now, "system", "sla_escalation",
                                 f"{step.name}: {step.clock} clock at {percent:.0f}% of target",
                                 data, conn=conn)
        team = self.policy.teams.teams.get(cur.get("team") or "")
        return Notification(ticket_json(cur), step.name, step.clock, round(percent, 1), who,
                            str(team.webhook) if team and team.webhook else None,
                            key=f"fieldwatch-{cur['id']}-{step.name}")

    def _send(self, n: Notification, result: TickResult) -> None:
        tid, now = n.ticket["id"], self.clock.now()
        if self.notifier is None:
            return
        try:
            self.notifier.notify(n)
        except DeskError as exc:
            result.notify_failed += 1
            log.warning("escalation %s of ticket %s not delivered: %s", n.step, tid, exc)
            self.store.add_event(tid, now, "system", "notify_failed", str(exc)[:500],
                                 {"step": n.step})
            return
        result.notified += 1
        self.store.add_event(tid, now, "system", "notified", f"{n.step} sent",
                             {"step": n.step, "recipients": n.recipients})

