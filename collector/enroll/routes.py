"""POST /api/v1/enroll — a device trades its one-time token for its broker credentials.

    POST /api/v1/enroll   {"token": "fwe_..."}
        200  {"site", "device", "username", "password", "broker": {...}, "acl": {...},
              "targets": [...], "diag_public_key": PEM | null}
        403  {"detail", "reason"}  reason: forged, used, expired, retired, malformed
        429  too many refused tokens from this address lately (Retry-After)
        503  the broker did not take the account (the token stays valid: try again)

No login: the token is the credential. Served over HTTPS by the collector (docs/desk.md, "TLS
and proxies"). Every refusal is audited (enroll_audit) and counted
(`enroll_refused_total{reason}`); an address with too many refusals waits, as failed logins do.
Answers are never cached (Cache-Control: no-store): they carry a password.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import anyio.to_thread
import sqlalchemy as sa
from fieldwatch.collector.enroll.config import EnrollConfig
from fieldwatch.collector.enroll.service import Enrollment
from fieldwatch.collector.enroll.tokens import well_formed
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.web.accounts.throttle import Throttle
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldwatch.clock import Clock
from fieldwatch.errors import EnrollmentRefused, ProvisioningError

log = logging.getLogger(__name__)

PATH = "/api/v1/enroll"
NO_STORE = {"Cache-Control": "no-store"}


def enroll_routes(enrollment: Enrollment, stats: Stats, throttle: Throttle) -> list[Route]:
    def refuse(address: str, reason: str) -> Response:
        throttle.failed(address)
        stats.inc("enroll_refused_total", reason)
        log.warning("enrollment refused from %s: %s", address, reason)
        return JSONResponse({"detail": "enrollment token refused", "reason": reason}, 403,
                            headers=NO_STORE)

    async def enroll(request: Request) -> Response:
        address = request.client.host if request.client else "?"
        wait = throttle.blocked(address)
        if wait > 0:
            stats.inc("enroll_refused_total", "throttled")
            return JSONResponse({"detail": "too many refused enrollment tokens; try later"},
                                429, headers={"Retry-After": str(int(wait) + 1), **NO_STORE})
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        token = body.get("token") if isinstance(body, dict) else None
        if not well_formed(token):
            await anyio.to_thread.run_sync(enrollment.store.refused, "malformed", address)
            return refuse(address, "malformed")
        try:
            bundle = await anyio.to_thread.run_sync(enrollment.exchange, token, address)
        except EnrollmentRefused as exc:
            return refuse(address, exc.reason)
        except ProvisioningError as exc:
            stats.inc("enroll_provisioning_failures_total")
            log.error("enrollment from %s: the broker did not take the account: %s",
                      address, exc)
            return JSONResponse({"detail": "the broker did not take the account; the token "
                                 "is still valid, try again"}, 503, headers=NO_STORE)
        throttle.succeeded(address)
        stats.inc("enroll_exchanged_total")
        log.info("enrolled %s/%s as %s from %s", bundle["site"], bundle["device"],
                 bundle["username"], address)
        return JSONResponse(bundle, headers=NO_STORE)

    return [Route(PATH, enroll, methods=["POST"])]


def build(cfg: EnrollConfig, engine: sa.Engine, diag_private: Path | None,
          clock: Clock) -> tuple[Enrollment, Throttle]:
    """The collector's enrollment service and its failure throttle, from `enroll:`."""
    from fieldwatch.collector.enroll.brokers import from_config
    from fieldwatch.collector.enroll.service import Endpoint
    from fieldwatch.collector.enroll.store import EnrollStore

    enrollment = Enrollment(EnrollStore(engine, clock), from_config(cfg),
                            Endpoint.from_config(cfg, diag_private))
    return enrollment, Throttle(clock, cfg.max_failures, cfg.failure_window)
