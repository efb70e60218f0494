"""The HTTP shell: one route per desk with `inbound:` configured, `POST /api/v1/inbound/<desk
name>`, taking that desk's own webhooks; and `GET /api/v1/inbound` (API token) listing the
routes and the refused requests.

In order, each refused with a counted, audited reason (audit.py): body over `MAX_BYTES`
(413), a media type the desk does not send (415), a bad or missing signature (401), a body the
desk's parser cannot read (400), a change older than the replay window (`too_old`, 400).
Then the change is applied (apply.py); a delivery seen before changes nothing and is counted
(`inbound_replays_total`). A desk's ticket fieldwatch does not know is answered 200 and
counted (`inbound_changes_total{reason="<desk>:unknown"}`): the desk must not retry it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.desks.config import InboundConfig, IntegrationsConfig
from fieldwatch.collector.desks.inbound import apply as applying
from fieldwatch.collector.desks.inbound import glpi, jira, pagerduty, servicenow, zammad
from fieldwatch.collector.desks.inbound.audit import Audit
from fieldwatch.collector.desks.inbound.model import Delivery, Keys
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.web.api.auth import Tokens, guarded
from fieldwatch.collector.web.api.guard import media_type, read_body
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldwatch.clock import Clock
from fieldwatch.errors import WireFormatError
from fieldwatch.jsonout import iso

log = logging.getLogger(__name__)

PREFIX = "/api/v1/inbound"
MAX_BYTES = 1024 * 1024
KINDS: dict[str, ModuleType] = {"jira": jira, "zammad": zammad, "pagerduty": pagerduty,
                                "glpi": glpi, "servicenow": servicenow}
# media types each desk sends; "" is no Content-Type at all (GLPI's default)
MEDIA: dict[str, tuple[str, ...]] = {"glpi": ("application/json", "")}
PRUNE_EVERY = 3600.0
KEEP_REFUSALS = 30 * 86400.0


def inbound_desks(cfg: IntegrationsConfig) -> list[tuple[str, str, InboundConfig]]:
    """(name, kind, inbound config) of every desk whose changes come back."""
    return [(t.name, t.type, t.inbound) for t in cfg.targets
            if t.type in KINDS and getattr(t, "inbound", None) is not None]


def endpoint(store: Store, instance: str, name: str, kind: str, icfg: InboundConfig,
             clock: Clock, stats: Stats, audit: Audit,
             one_writer: threading.Lock | None = None) -> Callable[[Request], Any]:
    """The POST handler for desk `name`; its secret is read now (a missing one: ConfigError).
    On SQLite, `one_writer` queues this process's webhooks in turn: SQLite takes one writer
    at a time, and a writer that finds it busy sleeps in steps of up to 100 ms."""
    writing = one_writer or contextlib.nullcontext()

    def applied(delivery: Delivery, now: float) -> applying.Result:
        """The change, then any pruning due, in one trip to the thread pool (under load every
        trip waits for a thread to be scheduled)."""
        with writing:
            result = applying.apply(store, instance, delivery, delivery.changes, now)
        try:
            housekeeping(now)
        except sa.exc.SQLAlchemyError as exc:  # the change stands; pruning waits an hour
            stats.inc("inbound_errors_total", name)
            log.warning("inbound %s: pruning failed: %s", name, type(exc).__name__)
        return result

    module = KINDS[kind]
    keys = Keys(icfg.secret.value().get_secret_value().encode(), icfg.username)
    media = MEDIA.get(kind, ("application/json",))
    pruned_at = [clock.now()]

    def refuse(request: Request, reason: str, status: int, detail: str) -> Response:
        client = request.client.host if request.client else "?"
        audit.refused(name, reason, status, client, detail)
        return JSONResponse({"detail": detail}, status)

    def housekeeping(now: float) -> None:
        if now - pruned_at[0] < PRUNE_EVERY:
            return
        pruned_at[0] = now
        applying.prune(store, now - icfg.keep_seen)
        audit.prune(now - KEEP_REFUSALS)

    async def receive(request: Request) -> Response:
        if media_type(request.headers.get("content-type")) not in media:
            return await run_in_threadpool(
                refuse, request, "media_type", 415,
                f"send the body as Content-Type: {media[0]}")
        body = await read_body(request, MAX_BYTES)
        if body is None:
            return await run_in_threadpool(refuse, request, "too_large", 413,
                                           f"payload over {MAX_BYTES} bytes")
        if not module.verify(request.headers, body, keys):
            return await run_in_threadpool(refuse, request, "signature", 401,
                                           "missing or wrong signature")
        try:
            delivery = module.parse(name, request.headers, body, icfg.states)
        except WireFormatError as exc:
            return await run_in_threadpool(refuse, request, exc.reason, 400, str(exc))
        now = clock.now()
        if delivery.at < now - icfg.keep_seen:
            return await run_in_threadpool(
                refuse, request, "too_old", 400,
                f"change of {iso(delivery.at)} is older than the replay window")
        try:
            result = await run_in_threadpool(applied, delivery, now)
        except sa.exc.OperationalError as exc:  # the store is down: the desk retries later
            stats.inc("inbound_errors_total", name)
            log.error("inbound %s: store unavailable: %s", name, type(exc).__name__)
            return JSONResponse({"detail": "store unavailable, retry later"}, 503)
        if result.replay:
            stats.inc("inbound_replays_total", name)
            return JSONResponse({"status": "replay"})
        for outcome, n in result.outcomes.items():
            stats.inc("inbound_changes_total", f"{name}:{outcome}", n)
        return JSONResponse({"status": "ok", **result.outcomes})

    return receive


def routes(store: Store, cfg: IntegrationsConfig, clock: Clock, stats: Stats,
           tokens: Tokens) -> list[Route]:
    """A POST route per desk with `inbound:`, and the listing behind the API's `tokens`;
    none without such desks."""
    desks = inbound_desks(cfg)
    if not desks:
        return []
    audit = Audit(store.engine, clock, stats)
    one_writer = threading.Lock() if store.engine.dialect.name == "sqlite" else None
    out = [Route(f"{PREFIX}/{name}", endpoint(store, cfg.instance, name, kind, icfg, clock,
                                               stats, audit, one_writer), methods=["POST"])
           for name, kind, icfg in desks]

    async def listing(request: Request) -> Response:
        try:
            limit = min(max(int(request.query_params.get("limit", "100")), 1), 1000)
        except ValueError:
            return JSONResponse({"detail": "limit must be an integer"}, 422)
        rows = await run_in_threadpool(audit.recent, limit, request.query_params.get("desk"))
        return JSONResponse({
            "desks": [{"name": n, "type": k, "path": f"{PREFIX}/{n}"} for n, k, _ in desks],
            "refused": [refusal_json(r) for r in rows]})

    out.append(Route(PREFIX, guarded(listing, tokens), methods=["GET"]))
    return out


def refusal_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "at": iso(row["at"]), "desk": row["desk"], "reason": row["reason"],
            "status": row["status"], "remote": row["remote"], "detail": row["detail"]}

