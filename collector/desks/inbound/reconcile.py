"""The reconcile: webhooks get lost (a desk's retries give up, a proxy was down), so every
`inbound.reconcile` seconds each desk's linked tickets that can still change — open, resolved,
or closed within the replay window — are read from the desk through its adapter's HTTP client,
the longest-unheard first, `reconcile_batch` a round, and what they say goes through the same
`apply` as a webhook. Reading a state twice changes nothing the second time (edges against
`desk_sync`), so a reconcile racing a webhook is harmless.

PagerDuty's Events API cannot be read: its reconcile uses the REST API and needs
`inbound.api_token`; without one that desk is not reconciled (said once at start-up).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.desks.config import InboundConfig
from fieldwatch.collector.desks.http import body, send
from fieldwatch.collector.desks.inbound import apply as applying
from fieldwatch.collector.desks.inbound import glpi, jira, pagerduty, servicenow, zammad
from fieldwatch.collector.desks.inbound.model import Inbound
from fieldwatch.collector.desks.inbound.sync import touch
from fieldwatch.collector.store.schema import desk_links, desk_sync, tickets
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.lifecycle import OPEN_STATES

from fieldwatch.clock import Clock
from fieldwatch.errors import DeskError, DeskUnavailable, WireFormatError

log = logging.getLogger(__name__)

Read = Callable[[str], Inbound | None]  # external id → what the desk says now


@dataclass(frozen=True)
class Target:
    name: str
    kind: str
    cfg: InboundConfig
    desk: Any  # the outbound adapter: its `client` and `api` (base URL, auth headers)


@contextmanager
def reader(t: Target) -> Iterator[Read]:
    """A function reading one external ticket of `t`, for one round (GLPI: one session)."""
    client, states, name = t.desk.client, t.cfg.states, t.name
    if t.kind == "glpi":
        api = t.desk.api
        session = api.session(send(client, api.init_session()))
        try:
            yield lambda ext: glpi.state(name, body(send(client, api.get_ticket(session, ext))),
                                         states)
        finally:
            try:
                send(client, api.kill_session(session))
            except DeskError as exc:  # the session expires on its own
                log.warning("reconcile %s: killSession failed: %s", name, exc)
        return
    if t.kind == "pagerduty":
        assert t.cfg.api_token is not None
        token, url = t.cfg.api_token.value().get_secret_value(), str(t.cfg.api_url)
        yield lambda ext: pagerduty.state(name, body(send(client, pagerduty.state_request(
            url, token, ext))), states)
        return
    module = {"jira": jira, "zammad": zammad, "servicenow": servicenow}[t.kind]
    api = t.desk.api
    yield lambda ext: module.state(name, body(send(client, module.state_request(
        api.base, api.headers, ext))), states)


def candidates(engine: sa.Engine, desk: str, now: float, keep: float,
               limit: int) -> list[tuple[int, str]]:
    """(ticket id, external id) of the desk's tickets that can still change, the
    longest-unheard first."""
    live = sa.or_(tickets.c.state.in_((*OPEN_STATES, "resolved")),
                  sa.and_(tickets.c.state == "closed", tickets.c.closed_at >= now - keep))
    q = (sa.select(desk_links.c.ticket_id, desk_links.c.external_id)
         .select_from(desk_links.join(tickets, tickets.c.id == desk_links.c.ticket_id)
                      .outerjoin(desk_sync, sa.and_(desk_sync.c.ticket_id == desk_links.c.ticket_id,
                                                    desk_sync.c.desk == desk_links.c.desk)))
         .where(desk_links.c.desk == desk, live)
         .order_by(sa.func.coalesce(desk_sync.c.synced_at, 0.0), desk_links.c.ticket_id)
         .limit(limit))
    with engine.connect() as conn:
        return [(int(r[0]), str(r[1])) for r in conn.execute(q)]


def reconcile_once(store: Store, instance: str, t: Target, clock: Clock,
                   stats: Stats) -> dict[str, int]:
    """One round for one desk; returns outcome counts (applied, nothing, …, error)."""
    counts: dict[str, int] = {}
    todo = candidates(store.engine, t.name, clock.now(), t.cfg.keep_seen, t.cfg.reconcile_batch)
    if not todo:
        return counts
    first_error = ""
    with reader(t) as read:
        for tid, ext in todo:
            try:
                said = read(ext)
                if said is None:
                    counts["missing"] = counts.get("missing", 0) + 1
            except DeskUnavailable as exc:  # the desk is down: the rest waits for next round
                counts["error"] = counts.get("error", 0) + 1
                log.warning("reconcile %s: desk unavailable, round ended: %s", t.name, exc)
                break
            except (DeskError, WireFormatError) as exc:  # this ticket only (gone, odd)
                counts["error"] = counts.get("error", 0) + 1
                first_error = first_error or f"ticket {tid} ({ext}): {exc}"
                said = None
            if said is None:  # to the back of the queue: the others get their turn
                with store.transaction() as conn:
                    touch(conn, tid, t.name, clock.now())
                continue
            result = applying.apply(store, instance, None, [said], clock.now())
            for outcome, n in result.outcomes.items():
                counts[outcome] = counts.get(outcome, 0) + n
                stats.inc("inbound_changes_total", f"{t.name}:{outcome}", n)
    stats.inc("inbound_reconciled_total", t.name, len(todo))
    if counts.get("error"):
        stats.inc("inbound_reconcile_errors_total", t.name, counts["error"])
    if first_error:
        log.warning("reconcile %s: %d tickets not read, first %s", t.name, counts["error"],
                    first_error)
    return counts


class Reconciler:
    """One thread for every desk's reconcile, each on its own period; `stop` ends it."""

    def __init__(self, store: Store, instance: str, targets: Sequence[Target], clock: Clock,
                 stats: Stats) -> None:
        self.store, self.instance, self.clock, self.stats = store, instance, clock, stats
        self.targets = []
        for t in targets:
            if t.cfg.reconcile <= 0:
                continue
            if t.kind == "pagerduty" and t.cfg.api_token is None:
                log.info("inbound %s: no api_token, so PagerDuty is not reconciled (its "
                         "webhooks still apply)", t.name)
                continue
            self.targets.append(t)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="fieldwatch-reconcile")

    def run_due(self, due: Mapping[str, float]) -> dict[str, float]:
        """Reconcile the desks whose time has come; returns when each is next due."""
        out = dict(due)
        for t in self.targets:
            now = self.clock.now()
            if due.get(t.name, 0.0) > now:
                continue
            out[t.name] = now + t.cfg.reconcile
            try:
                reconcile_once(self.store, self.instance, t, self.clock, self.stats)
            except Exception:  # noqa: BLE001 - the store or a bug: next round tries again
                self.stats.inc("inbound_reconcile_errors_total", t.name)
                log.exception("reconcile %s failed; next round in %.0fs", t.name,
                              t.cfg.reconcile)
        return out

    def _run(self) -> None:
        due = {t.name: self.clock.now() + min(t.cfg.reconcile, 30.0) for t in self.targets}
        while not self._stop.is_set():
            due = self.run_due(due)
            wait = min(due.values(), default=self.clock.now() + 60.0) - self.clock.now()
            self._stop.wait(min(max(wait, 0.5), 60.0))

    def start(self) -> None:
        if self.targets:
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
