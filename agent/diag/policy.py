"""Consent and rate: may this (verified) request run on this device now? Pure, clock injected."""

from __future__ import annotations

from collections import deque

from fieldwatch.agent.diag.checks import CHANGING, Check
from fieldwatch.agent.diag.config import PolicyConfig

from fieldwatch import wire
from fieldwatch.errors import DiagnosticRefused


def policy_for(check: Check, cfg: PolicyConfig) -> str:
    p = cfg.checks.get(check.name)
    if p is None:
        p = cfg.changing if check.cls == CHANGING else cfg.read_only
    if check.cls == CHANGING and p == "auto":
        p = "ask"  # config validation forbids it; this keeps the rule if a model is built by hand
    return p


def consent(check: Check, req: wire.DiagRequest, cfg: PolicyConfig) -> None:
    """Refuse `not_allowed` (policy never), `approval_required` or `approval_mismatch`."""
    if check.name == "list":
        return  # describing the allow-list changes nothing and reveals only names
    p = policy_for(check, cfg)
    if p == "never":
        raise DiagnosticRefused("not_allowed", f"{check.name} is not allowed on this device")
    if p == "auto":
        return
    ap = req.approval
    if ap is None:
        raise DiagnosticRefused("approval_required",
                                f"{check.name} needs an approval recorded on a ticket")
    if req.ticket is None or ap.ticket != req.ticket or ap.action != check.name:
        raise DiagnosticRefused("approval_mismatch",
                                f"the approval is for {ap.action!r} on ticket {ap.ticket}, "
                                f"not {check.name!r} on ticket {req.ticket}")
    if not ap.by.strip():
        raise DiagnosticRefused("approval_mismatch", "the approval names nobody")


class RateLimiter:
    """At most `max` runs in any window of `per` seconds (sliding)."""

    def __init__(self, max_runs: int, per: float) -> None:
        self.max, self.per = max_runs, per
        self.times: deque[float] = deque()

    def take(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.per:
            self.times.popleft()
        if len(self.times) >= self.max:
            raise DiagnosticRefused("rate_limited",
                                    f"{self.max} diagnostics per {self.per:g}s already run")
        self.times.append(now)
