"""One request in, one result out: decode → verify → consent → validate → rate → run → audit.

Every path ends in an audit line and, where it can be addressed, a DiagResult (refusals
included, with a machine-readable `reason`), so the collector and the device's owner both see
every attempt. A payload that does not decode (malformed, oversized, nested too deeply) is
answered only when its id can still be read safely and it names this device; otherwise it is
audited and counted (`unanswered`), and the collector times the request out.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec
from fieldwatch.agent.diag import args as argcheck
from fieldwatch.agent.diag.audit import AuditLog, payload_facts, record
from fieldwatch.agent.diag.checks import Argv, Check, Unavailable, build_registry
from fieldwatch.agent.diag.config import DiagConfig
from fieldwatch.agent.diag.policy import RateLimiter, consent
from fieldwatch.agent.diag.runner import SAFE_ENV, Outcome, run_argv, run_call
from fieldwatch.agent.diag.verify import NonceStore, Verifier

from fieldwatch import wire
from fieldwatch.clock import Clock
from fieldwatch.errors import DiagnosticRefused, WireFormatError

log = logging.getLogger(__name__)


_CONTROL = {c: "\ufffd" for c in range(32) if chr(c) not in "\t\n\r"} | {127: "\ufffd"}


def printable(data: bytes) -> str:
    """Output as text for a ticket: invalid UTF-8 and control characters (NUL, escapes that
    could drive a technician's terminal) become U+FFFD."""
    return data.decode("utf-8", "replace").translate(_CONTROL)


class _Partial(msgspec.Struct):
    """What can be read from a request that fails validation, to address the refusal. Any
    JSON is taken here (a wrongly typed `check` must not hide the `id`); `_partial` keeps
    only values of the right type."""

    id: object = ""
    check: object = ""
    ticket: object = None
    device: object = ""
    site: object = ""


@dataclass(frozen=True)
class _Address:
    id: str = ""
    check: str = ""
    ticket: int | None = None
    device: str = ""
    site: str = ""


PARTIAL_DEPTH = 256  # levels read to find the id of a refused request (msgspec: ~1,000)
MAX_ID = 64  # the collector's ids are 32 hex digits; its table holds 64
DETAIL_MAX = 300  # characters of a decoder's complaint in a refusal


class DiagHandler:
    def __init__(self, cfg: DiagConfig, device: str, site: str, state_dir: Path,
                 clock: Clock, keys: Mapping[str, bytes]) -> None:
        """`keys`: the trusted public keys by id (`signing.trusted(cfg.trusted_keys)`)."""
        self.cfg, self.device, self.site, self.clock = cfg, device, site, clock
        self.registry: dict[str, Check] = build_registry(cfg, state_dir)
        self.nonces = NonceStore(state_dir / "diag-nonces.json")
        self.verifier = Verifier(keys, self.nonces,
                                 cfg.max_validity, cfg.clock_skew)
        self.limiter = RateLimiter(cfg.rate_limit.max, cfg.rate_limit.per)
        self.audit = AuditLog(cfg.audit_log or state_dir / "diag-audit.jsonl",
                              cfg.audit_max_bytes, cfg.audit_keep)
        self._lock = threading.Lock()  # nonce store and rate limiter are shared by workers
        self.unanswered: Counter[str] = Counter()  # refusals nobody could be told of, by reason
        self._warned_at = float("-inf")

    def refuse(self, payload: bytes, reason: str, detail: str) -> wire.DiagResult | None:
        """Audit a payload we did not get far with (busy, malformed, a failure of our own) and
        return the refusal to publish — or None when it cannot be addressed safely: no readable
        id, or one naming another device (counted in `unanswered`)."""
        p = _partial(payload)
        ours = (p.device in ("", self.device) and p.site in ("", self.site)
                and 0 < len(p.id) <= MAX_ID and p.id.isprintable())
        now = self.clock.now()
        res = self._result(p.id if ours else "", p.check, p.ticket, "refused", now,
                           reason=reason, detail=detail[:DETAIL_MAX])
        self.audit.write({**record(None, res, now), **payload_facts(payload),
                          "answered": ours})
        if ours:
            return res
        self.unanswered[reason] += 1
        if now - self._warned_at >= 10.0:  # a flood of junk must not flood the log too
            self._warned_at = now
            log.warning("diag: refused a request that cannot be answered (%s; %d so far, "
                        "all in the audit log): %s", reason, sum(self.unanswered.values()),
                        detail[:DETAIL_MAX])
        return None

    def handle(self, payload: bytes) -> wire.DiagResult | None:
        received = self.clock.now()
        try:
            req = wire.decode_diag_request(payload)
        except WireFormatError as exc:
            return self.refuse(payload, "malformed", str(exc))
        try:
            check, values = self._admit(req, received)
        except DiagnosticRefused as exc:
            res = self._result(req.id, req.check, req.ticket, "refused", self.clock.now(),
                               reason=exc.reason, detail=exc.detail)
            log.warning("refused diagnostic %s (%s) on ticket %s: %s", req.check, req.id,
                        req.ticket, exc)
            self.audit.write(record(req, res, received))
            return res
        outcome, ok_codes = self._run(check, values)
        status = "ok"
        if outcome.timed_out:
            status = "timeout"
        elif outcome.error or outcome.exit_code is None:
            status = "error"
        elif outcome.exit_code not in ok_codes:
            status = "failed"
        res = self._result(
            req.id, req.check, req.ticket, status, self.clock.now(),
            reason=status if status != "ok" else "", detail=outcome.error,
            exit_code=outcome.exit_code, output=printable(outcome.output),
            output_bytes=outcome.output_bytes,
            truncated=outcome.output_bytes > len(outcome.output), duration=outcome.duration)
        self.audit.write(record(req, res, received, outcome.output))
        log.info("diagnostic %s (%s) for ticket %s: %s", req.check, req.id, req.ticket, status)
        return res

    def _admit(self, req: wire.DiagRequest, now: float) -> tuple[Check, dict[str, object]]:
        if (req.device, req.site) != (self.device, self.site):
            raise DiagnosticRefused("wrong_device", f"addressed to {req.site}/{req.device}")
        with self._lock:
            self.verifier.check(req, now)
        check = self.registry.get(req.check)
        if check is None:
            raise DiagnosticRefused("unknown_check", f"{req.check!r} is not offered here")
        consent(check, req, self.cfg.policy)
        values = argcheck.validate(check.params, dict(req.args), self.cfg.defaults.get(check.name))
        with self._lock:
            self.limiter.take(now)
        return check, values

    def _run(self, check: Check, values: dict[str, object]) -> tuple[Outcome, frozenset[int]]:
        try:
            plan = check.plan(values)
        except Unavailable as exc:
            return Outcome(None, b"", 0, False, 0.0, str(exc)), frozenset({0})
        if isinstance(plan, Argv):
            # an operator's command may set its own timeout; everything else gets the default
            timeout = plan.timeout if plan.timeout is not None else self.cfg.timeout
            if not plan.private_files:
                return run_argv(plan.argv, timeout, self.cfg.max_output), plan.ok_codes
            with tempfile.TemporaryDirectory(prefix="fieldwatch-diag-") as tmp:
                for name, text in plan.private_files:
                    fd = os.open(os.path.join(tmp, name), os.O_WRONLY | os.O_CREAT, 0o600)
                    with os.fdopen(fd, "w") as f:
                        f.write(text)
                env = {**SAFE_ENV, plan.private_dir_env or "FIELDWATCH_PRIVATE": tmp}
                return run_argv(plan.argv, timeout, self.cfg.max_output, env), plan.ok_codes
        return run_call(plan.fn, self.cfg.timeout, self.cfg.max_output), frozenset({0})

    def _result(self, id_: str, check: str, ticket: int | None, status: str, now: float,
                **kw: object) -> wire.DiagResult:
        return wire.DiagResult(device=self.device, site=self.site, id=id_, check=check,
                               status=status, ts=now, ticket=ticket, **kw)  # type: ignore[arg-type]

    def close(self) -> None:
        self.nonces.close()


def _partial(payload: bytes) -> _Address:
    """The addressing fields of a payload that failed to decode, where they can be read at all
    (not from a truncated or too deeply nested one: msgspec's depth guard raises
    RecursionError, caught here)."""
    head = payload[:65536]
    try:
        # msgspec recurses into what it skips: bound it first, well below its recursion limit
        wire.check_nesting(head, PARTIAL_DEPTH)
        p = msgspec.json.decode(head, type=_Partial)
    except (msgspec.DecodeError, msgspec.ValidationError, WireFormatError, RecursionError):
        return _Address()

    def text(v: object) -> str:
        """A string as it is; anything else (a number, a list) as "?", which names nothing."""
        return v if isinstance(v, str) else "?"

    ticket = p.ticket if (isinstance(p.ticket, int) and not isinstance(p.ticket, bool)
                          and -(2**63) <= p.ticket < 2**63) else None  # one the collector takes
    return _Address(p.id if isinstance(p.id, str) else "", text(p.check)[:128], ticket,
                    text(p.device), text(p.site))
