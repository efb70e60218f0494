"""Run-time silences (CLI and API write, the collector reads) and the record of muted alerts.

A silence needs matchers, an end after its start, an author and a reason: an unexplained or
endless mute is how real faults get missed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.rules.model import Silence
from fieldwatch.collector.rules.selectors import parse_matcher
from fieldwatch.collector.store.schema import muted_alerts, silences
from fieldwatch.collector.tickets.alerts import TicketChange

from fieldwatch.errors import FieldwatchError

MAX_SILENCE = 90 * 86400.0


def check_silence(matchers: Mapping[str, object], starts_at: float, ends_at: float,
                  author: str, reason: str) -> dict[str, str]:
    """The matchers as text, or FieldwatchError saying what is wrong."""
    if not matchers:
        raise FieldwatchError("a silence needs at least one matcher (it would mute everything)")
    out = {}
    for k, v in matchers.items():
        if not isinstance(k, str) or not k:
            raise FieldwatchError("matcher names are non-empty strings")
        try:
            out[k] = str(parse_matcher(v))
        except ValueError as exc:
            raise FieldwatchError(f"matcher {k}: {exc}") from None
    if not ends_at > starts_at:
        raise FieldwatchError("a silence must end after it starts")
    if ends_at - starts_at > MAX_SILENCE:
        raise FieldwatchError("a silence may last at most 90 days: use a rule change instead")
    if not author.strip():
        raise FieldwatchError("a silence needs an author")
    if not reason.strip():
        raise FieldwatchError("a silence needs a reason")
    return out


def _silence(row: Mapping[str, Any]) -> Silence:
    return Silence(row["id"], {k: parse_matcher(v) for k, v in row["matchers"].items()},
                   row["starts_at"], row["ends_at"], row["author"], row["reason"])


class SilenceStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(self, matchers: Mapping[str, object], starts_at: float, ends_at: float,
            author: str, reason: str, now: float) -> str:
        text = check_silence(matchers, starts_at, ends_at, author, reason)
        sid = uuid.uuid4().hex[:12]
        with self.engine.begin() as conn:
            conn.execute(silences.insert().values(
                id=sid, matchers=text, starts_at=starts_at, ends_at=ends_at,
                author=author.strip(), reason=reason.strip(), created_at=now))
        return sid

    def expire(self, sid: str, now: float) -> bool:
        """End a silence now; False when there is no such silence still running."""
        with self.engine.begin() as conn:
            res = conn.execute(silences.update().where(
                silences.c.id == sid, silences.c.ends_at > now).values(
                ends_at=sa.case((silences.c.starts_at > now, silences.c.starts_at),
                                else_=now), expired_at=now))
            return bool(res.rowcount)

    def list(self, now: float, include_ended: bool = False) -> list[dict[str, Any]]:
        q = sa.select(silences).order_by(silences.c.starts_at, silences.c.id)
        if not include_ended:
            q = q.where(silences.c.ends_at > now)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        for r in rows:
            r["state"] = ("expired" if r["ends_at"] <= now else
                          "pending" if r["starts_at"] > now else "active")
        return rows

    def current(self, now: float) -> list[Silence]:
        """Silences not yet ended (running or scheduled), for the engine."""
        return [_silence(r) for r in self.list(now)]

    def record_muted(self, changes: Iterable[TicketChange]) -> int:
        rows = [{"at": c.last_ts, "kind": c.kind, "fingerprint": c.fingerprint, "rule": c.rule,
                 "site": c.site, "device": c.device, "labels": dict(c.labels),
                 "severity": c.severity, "value": c.value, "silence_id": c.silenced,
                 "suppressed_by": c.suppressed_by, "parent": c.parent, "reason": c.reason}
                for c in changes]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(muted_alerts.insert(), rows)
        return len(rows)

    def muted(self, limit: int = 500) -> list[dict[str, Any]]:
        q = sa.select(muted_alerts).order_by(muted_alerts.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]
