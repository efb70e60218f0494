"""Refused inbound requests: counted (`inbound_refused_total{reason="<desk>:<reason>"}`), logged
and recorded in `inbound_refusals` — both at most `BURST` times per desk and reason a minute,
so a flood of forged requests costs a counter increment each, not a log line and a row."""

from __future__ import annotations

import logging
import threading
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.store.schema import inbound_refusals
from fieldwatch.collector.telemetry.stats import Stats

from fieldwatch.clock import Clock

log = logging.getLogger(__name__)

BURST = 10  # rows and log lines per desk and reason per minute
WINDOW = 60.0


class Audit:
    def __init__(self, engine: sa.Engine, clock: Clock, stats: Stats) -> None:
        self.engine, self.clock, self.stats = engine, clock, stats
        self._lock = threading.Lock()
        self._window: dict[tuple[str, str], tuple[float, int]] = {}  # → (window start, n)

    def _admit(self, desk: str, reason: str, now: float) -> bool:
        with self._lock:
            start, n = self._window.get((desk, reason), (now, 0))
            if now - start >= WINDOW:
                start, n = now, 0
            self._window[(desk, reason)] = (start, n + 1)
            return n < BURST

    def refused(self, desk: str, reason: str, status: int, remote: str, detail: str) -> None:
        self.stats.inc("inbound_refused_total", f"{desk}:{reason}")
        now = self.clock.now()
        if not self._admit(desk, reason, now):
            return
        log.warning("inbound %s: request from %s refused (%d %s): %s (at most %d a minute are "
                    "logged)", desk, remote, status, reason, detail, BURST)
        try:
            with self.engine.begin() as conn:
                conn.execute(inbound_refusals.insert().values(
                    at=now, desk=desk[:64], reason=reason[:32], status=status,
                    remote=remote[:64], detail=detail.replace("\x00", "")[:500]))
        except sa.exc.SQLAlchemyError as exc:  # the refusal stands; the audit row is lost
            self.stats.inc("inbound_audit_errors_total")
            log.error("inbound %s: refusal not recorded: %s", desk, type(exc).__name__)

    def recent(self, limit: int = 100, desk: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(inbound_refusals).order_by(inbound_refusals.c.id.desc()).limit(limit)
        if desk:
            q = q.where(inbound_refusals.c.desk == desk)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def prune(self, before: float) -> int:
        with self.engine.begin() as conn:
            return conn.execute(inbound_refusals.delete().where(inbound_refusals.c.at < before)
                                ).rowcount
