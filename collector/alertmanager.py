"""Alertmanager in: webhook payloads (version 4) become fieldwatch tickets.

Each alert's fingerprint names its ticket (`am:<fingerprint>`): `firing` opens or updates it,
`resolved` resolves it. Alertmanager delivers the same notification more than once (HA pairs,
retries, repeat_interval): a (fingerprint, startsAt, status) already applied is skipped, in the
same transaction as the ticket change, so a retry after a crash is applied exactly once.

`parse` and `changes` are pure; `apply` is the one database step; `endpoint` the HTTP shell.
A malformed payload is refused whole with 400 and the problems listed (Alertmanager does not
retry 4xx), counted, logged — nothing half-applied.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fieldwatch.collector.alerts import TicketChange
from fieldwatch.collector.desks.config import AlertmanagerConfig
from fieldwatch.collector.stats import Stats
from fieldwatch.collector.store.schema import alertmanager_seen
from fieldwatch.collector.store.store import Store
from sqlalchemy.dialects import postgresql, sqlite
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fieldwatch.clock import Clock
from fieldwatch.errors import WireFormatError

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


def change(alert: Alert, cfg: AlertmanagerConfig) -> TicketChange:
    """The ticket change one alert asks for."""
    lab, ann = alert.labels, alert.annotations
    device = next((lab[k] for k in cfg.device_labels if lab.get(k)), "alertmanager")
    name = lab["alertname"]
    severity = cfg.severity.get(lab.get("severity", "").lower(), cfg.default_severity)
    description = ann.get("description", "")
    if alert.generator_url:
        description = f"{description}\n\nSource: {alert.generator_url}".strip()
    resolved = alert.status == "resolved"
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


def apply(store: Store, alerts: Sequence[Alert], cfg: AlertmanagerConfig,
          now: float) -> Applied:
    """Apply the alerts not seen before, and remember them, in one transaction."""
    insert = (postgresql.insert if store.engine.dialect.name == "postgresql"
              else sqlite.insert)(alertmanager_seen)
    fresh: list[Alert] = []
    with store.engine.begin() as conn:
        for a in alerts:
            # a concurrent delivery to another collector waits here, then finds the row
            claimed = conn.execute(insert.values(
                fingerprint=a.fingerprint, starts_at=f"{a.starts_at:.6f}", status=a.status,
                seen_at=now).on_conflict_do_nothing().returning(
                alertmanager_seen.c.fingerprint)).first()
            if claimed is not None:
                fresh.append(a)
        # the store's own batch step, inside this transaction (one place decides tickets)
        store._apply(conn, [change(a, cfg) for a in fresh], now)
        conn.execute(alertmanager_seen.delete().where(
            alertmanager_seen.c.seen_at < now - cfg.keep_seen))
    return Applied(len(fresh), len(alerts) - len(fresh))


def endpoint(store: Store, cfg: AlertmanagerConfig, clock: Clock,
             stats: Stats) -> Callable[[Request], Awaitable[Response]]:
    """The POST handler Alertmanager's webhook_config points at."""
    token = cfg.token.value().get_secret_value().encode() if cfg.token else None

    async def receive(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
            if not hmac.compare_digest(given, token):
                stats.inc("alertmanager_rejected_total", "auth")
                return JSONResponse({"detail": "missing or wrong bearer token"}, 401,
                                    headers={"WWW-Authenticate": "Bearer"})
        body = await request.body()
        if len(body) > MAX_BYTES:
            stats.inc("alertmanager_rejected_total", "oversized")
            return JSONResponse({"detail": f"payload over {MAX_BYTES} bytes"}, 413)
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
