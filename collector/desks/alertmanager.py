"""Alertmanager in: webhook payloads (version 4) become fieldwatch tickets.

Each alert's fingerprint names its ticket (`am:<fingerprint>`): `firing` opens it (or reopens
it, per the ticket rules), `resolved` resolves it. Alertmanager delivers the same notification
more than once (HA pairs, retries, repeat_interval), so an alert is applied only when the
ticket's current state does not already say it: `firing` with an open ticket, or `resolved`
with none, is a duplicate. Decided in the same transaction as the ticket change, so a retry
after a crash is applied once — and a re-fire after Alertmanager resolved the alert itself
(same startsAt) reopens, as it must.

The intake has its own bearer token (`integrations.alertmanager.token`; `fieldwatch up` makes
one), not the API's: Alertmanager gets a credential that can do nothing but this.

`parse`, `change` and `fresh` are pure; `apply` is the one database step; `endpoint` the HTTP
shell. A malformed payload is refused whole with 400 and the problems listed (Alertmanager does
not retry 4xx), counted, logged — nothing half-applied.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.desks.config import AlertmanagerConfig
from fieldwatch.collector.store.schema import alertmanager_seen, tickets
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.alerts import TicketChange
from fieldwatch.collector.tickets.lifecycle import OPEN_STATES
from fieldwatch.collector.web.api.auth import bearer
from fieldwatch.collector.web.api.guard import check, read_body
from sqlalchemy.dialects import postgresql, sqlite
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fieldwatch.clock import Clock
from fieldwatch.errors import WireFormatError
from fieldwatch.redact import redact_url

log = logging.getLogger(__name__)

PATH = "/api/v1/alertmanager"
MAX_BYTES = 4 * 1024 * 1024
_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True)
class Alert:
    status: str  # firing | resolved
    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float | None
    generator_url: str


def _time(text: Any, where: str) -> float | None:
    if not isinstance(text, str) or not text:
        raise WireFormatError("bad_time", f"{where}: expected an RFC 3339 time")
    if text.startswith("0001-01-01"):
        return None  # Go's zero time: not set
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", text)).timestamp()
    except ValueError:
        raise WireFormatError("bad_time", f"{where}: {text!r} is not an RFC 3339 time") from None


def _strings(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise WireFormatError("bad_field", f"{where}: expected a mapping of strings")
    return dict(value)


def parse(payload: bytes) -> list[Alert]:
    """The alerts of one webhook notification; WireFormatError says what is wrong."""
    try:
        doc = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WireFormatError("bad_json", str(exc)) from None
    if not isinstance(doc, dict):
        raise WireFormatError("bad_field", "expected a JSON object")
    if doc.get("version") != "4":
        raise WireFormatError("bad_version", f"version {doc.get('version')!r}; expected \"4\"")
    raw = doc.get("alerts")
    if not isinstance(raw, list):
        raise WireFormatError("bad_field", "alerts: expected a list")
    alerts = []
    for i, a in enumerate(raw):
        where = f"alerts[{i}]"
        if not isinstance(a, dict):
            raise WireFormatError("bad_field", f"{where}: expected an object")
        status = a.get("status")
        if status not in ("firing", "resolved"):
            raise WireFormatError("bad_field", f"{where}.status: {status!r}")
        labels = _strings(a.get("labels"), f"{where}.labels")
        if not labels.get("alertname"):
            raise WireFormatError("bad_field", f"{where}.labels: no alertname")
        fp = a.get("fingerprint")
        if not isinstance(fp, str) or not re.fullmatch(r"[0-9a-fA-F]{1,32}", fp):
            # older Alertmanagers send none: a stable hash of the label set, like theirs
            fp = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
        starts = _time(a.get("startsAt"), f"{where}.startsAt")
        if starts is None:
            raise WireFormatError("bad_time", f"{where}.startsAt: not set")
        ends = _time(a.get("endsAt"), f"{where}.endsAt") if a.get("endsAt") else None
        url = a.get("generatorURL") if isinstance(a.get("generatorURL"), str) else ""
        alerts.append(Alert(status, fp.lower(), labels,
                            _strings(a.get("annotations") or {}, f"{where}.annotations"),
                            starts, ends, url or ""))
    return alerts


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def change(alert: Alert, cfg: AlertmanagerConfig, at: float | None = None) -> TicketChange:
    """The ticket change one alert asks for, dated `at` (default: when the alert started or,
    resolved, ended)."""
    lab, ann = alert.labels, alert.annotations
    device = next((lab[k] for k in cfg.device_labels if lab.get(k)), "alertmanager")
    name = lab["alertname"]
    severity = cfg.severity.get(lab.get("severity", "").lower(), cfg.default_severity)
    description = ann.get("description", "")
    if alert.generator_url:
        description = f"{description}\n\nSource: {redact_url(alert.generator_url)}".strip()
    resolved = alert.status == "resolved"
    if at is None:
        at = (alert.ends_at or alert.starts_at) if resolved else alert.starts_at
    return TicketChange(
        kind="resolve" if resolved else "fire", fingerprint=f"am:{alert.fingerprint}",
        rule=name[:128], site=lab.get("site", cfg.site)[:128], device=device[:128],
        labels=dict(lab), severity=severity,
        title=(ann.get("summary") or f"{name} on {device}")[:500], description=description,
        team=lab.get("team"), value=_float(ann.get("value")),  # type: ignore[arg-type]
        first_ts=at, last_ts=at)


@dataclass(frozen=True)
class Applied:
    accepted: int
    duplicates: int


@dataclass(frozen=True)
class Last:
    """The newest ticket of an alert's fingerprint, as far as deduplication cares."""

    state: str
    close_reason: str | None
    ended_at: float | None  # resolved or closed: when


def fresh(alert: Alert, last: Last | None, delivered_before: bool) -> bool:
    """Whether the ticket's current state does not already say what `alert` says.

    A won't-fix ticket stays closed whatever fires, so only there the delivery log
    (`delivered_before`: this fingerprint, startsAt and status came in before) decides."""
    is_open = last is not None and last.state in OPEN_STATES
    if alert.status == "resolved":
        return is_open
    if last is not None and last.state == "closed" and last.close_reason == "wont_fix":
        return not delivered_before
    return not is_open


def _lasts(conn: sa.Connection, fps: Iterable[str]) -> dict[str, Last]:
    wanted, out = sorted(fps), {}
    for i in range(0, len(wanted), 500):
        for r in conn.execute(sa.select(
                tickets.c.fingerprint, tickets.c.state, tickets.c.close_reason,
                tickets.c.resolved_at, tickets.c.closed_at).where(
                tickets.c.fingerprint.in_(wanted[i:i + 500])).order_by(tickets.c.id)):
            ended = max(r.resolved_at or 0.0, r.closed_at or 0.0) or None
            out[r.fingerprint] = Last(r.state, r.close_reason, ended)  # newest id wins
    return out


def apply(store: Store, alerts: Sequence[Alert], cfg: AlertmanagerConfig,
          now: float) -> Applied:
    """Apply the alerts the tickets do not already reflect, in one transaction."""
    insert = (postgresql.insert if store.engine.dialect.name == "postgresql"
              else sqlite.insert)(alertmanager_seen)
    keys = sorted({(a.fingerprint, f"{a.starts_at:.6f}", a.status) for a in alerts})
    seen_cols = alertmanager_seen.c
    changes: list[TicketChange] = []
    with store.engine.begin() as conn:
        before = {(r.fingerprint, r.starts_at, r.status) for r in conn.execute(
            sa.select(seen_cols.fingerprint, seen_cols.starts_at, seen_cols.status).where(
                seen_cols.fingerprint.in_({k[0] for k in keys})))} if keys else set()
        if keys:
            # Write first, in one order: the delivery log's rows are the lock an identical
            # delivery to another collector waits on before it reads the state this one leaves.
            conn.execute(insert.on_conflict_do_update(
                index_elements=[seen_cols.fingerprint, seen_cols.starts_at, seen_cols.status],
                set_={"seen_at": insert.excluded.seen_at}),
                [{"fingerprint": f, "starts_at": s, "status": st, "seen_at": now}
                 for f, s, st in keys])
        lasts = _lasts(conn, {f"am:{a.fingerprint}" for a in alerts})
        for a in alerts:
            fp = f"am:{a.fingerprint}"
            last = lasts.get(fp)
            if not fresh(a, last, (a.fingerprint, f"{a.starts_at:.6f}", a.status) in before):
                continue
            at = None
            if a.status == "firing" and last and last.ended_at and last.ended_at >= a.starts_at:
                at = max(now, last.ended_at)  # the same alert back after it ended: fired now
            changes.append(change(a, cfg, at))
            ended = (a.ends_at or a.starts_at) if a.status == "resolved" else None
            lasts[fp] = Last("resolved" if ended is not None else "open", None,
                             ended if ended is not None else (last.ended_at if last else None))
        # the store's own batch step, inside this transaction (one place decides tickets)
        store._apply(conn, changes, now)
        conn.execute(alertmanager_seen.delete().where(seen_cols.seen_at < now - cfg.keep_seen))
    return Applied(len(changes), len(alerts) - len(changes))


def endpoint(store: Store, cfg: AlertmanagerConfig, clock: Clock,
             stats: Stats) -> Callable[[Request], Awaitable[Response]]:
    """The POST handler Alertmanager's webhook_config points at. Refuses before reading the
    body: too large (413), cross-origin (403), not JSON (415), no or wrong token (401)."""
    token = cfg.token.value().get_secret_value().encode() if cfg.token else None
    if cfg.auth == "none":
        log.warning("alertmanager intake at %s takes alerts from anyone "
                    "(integrations.alertmanager.auth: none)", PATH)
    elif not token:
        log.warning("alertmanager intake at %s has no token and refuses every request: set "
                    "integrations.alertmanager.token (or auth: none)", PATH)

    def refuse(reason: str, status: int, detail: str, **headers: str) -> Response:
        stats.inc("alertmanager_rejected_total", reason)
        return JSONResponse({"detail": detail}, status, headers=headers or None)

    async def receive(request: Request) -> Response:
        why = check(request.method, request.headers, MAX_BYTES)
        if why is not None:
            return refuse(why.reason, why.status, why.detail)
        if cfg.auth == "token":
            if not token:
                return refuse("auth", 401, "no Alertmanager token is configured on the server "
                                           "(integrations.alertmanager.token)",
                              **{"WWW-Authenticate": "Bearer"})
            if not hmac.compare_digest(bearer(request), token):
                return refuse("auth", 401, "missing or wrong bearer token",
                              **{"WWW-Authenticate": "Bearer"})
        body = await read_body(request, MAX_BYTES)
        if body is None:
            return refuse("too_large", 413, f"payload over {MAX_BYTES} bytes", Connection="close")
        try:
            alerts = parse(body)
        except WireFormatError as exc:
            stats.inc("alertmanager_rejected_total", exc.reason)
            log.warning("alertmanager payload refused: %s", exc)
            return JSONResponse({"detail": str(exc)}, 400)
        result = apply(store, alerts, cfg, clock.now())
        stats.inc("alertmanager_alerts_total", n=result.accepted)
        stats.inc("alertmanager_duplicates_total", n=result.duplicates)
        return JSONResponse({"accepted": result.accepted, "duplicates": result.duplicates})

    return receive
