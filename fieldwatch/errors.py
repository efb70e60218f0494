"""The one exception tree of fieldwatch.

    FieldwatchError
    ├── ConfigError        a config file is wrong (carries file:line:col problems)
    ├── RuleError          a rule file is wrong (same shape as ConfigError)
    ├── WireFormatError    an MQTT payload could not be decoded (carries the reason)
    ├── SourceError        a metric source failed for this cycle
    │   └── SourceUnsupported  never works here (no such hardware/tool): skip it from now on
    ├── DeskError          an external service desk failed
    │   ├── DeskUnavailable    retry later (connection, timeout, 5xx, 429)
    │   └── DeskRejected       give up (4xx other than 429)
    ├── DiagnosticRefused  a diagnostic request was refused (signature, policy, arguments)
    ├── StoreUnavailable   the store (database) cannot be reached: what, where and why
    ├── TicketError        a service-desk request cannot be done (`code` says why)
    │   ├── TicketNotFound     no such ticket
    │   └── TransitionRefused  the ticket's state does not allow it, or the input is invalid
    ├── AccountError       a desk user cannot be added or changed (no such user, bad role…)
    ├── EnrollmentRefused  an enrollment token was refused (`reason`: forged, used, expired…)
    └── ProvisioningError  the broker's provisioning interface refused or did not answer

Only the CLI prints and exits; everything else raises one of these.
"""

from __future__ import annotations

from dataclasses import dataclass


class FieldwatchError(Exception):
    """Base of every error fieldwatch raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a file, located for an editor to jump to."""

    file: str
    line: int  # 1-based; 0 when unknown
    col: int  # 1-based; 0 when unknown
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class LocatedError(FieldwatchError):
    """An error made of one or more located problems, all reported at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(LocatedError):
    """A config file is invalid."""


class RuleError(LocatedError):
    """A rule file is invalid."""


class WireFormatError(FieldwatchError):
    """A payload is malformed, oversized or of an unknown version; `reason` says which."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class SourceError(FieldwatchError):
    """A metric source could not be read this cycle."""


class SourceUnsupported(SourceError):
    """A source cannot work on this machine (tool or OS feature absent): counted once, then
    skipped instead of failing every cycle."""


class DeskError(FieldwatchError):
    """An external service desk did not take a delivery."""


class DeskUnavailable(DeskError):
    """The desk may take it later: retry with backoff."""

    def __init__(self, message: str, retry_after: float | None = None,
                 unclear: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # True when the request may have reached the desk (timeout after sending, 5xx): the
        # next attempt looks the ticket up before creating anything.
        self.unclear = unclear


class DeskRejected(DeskError):
    """The desk refused it for good: dead-letter it with the desk's answer."""


class DiagnosticRefused(FieldwatchError):
    """A diagnostic request was refused; `reason` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class StoreUnavailable(FieldwatchError):
    """The database cannot be reached (down, refusing connections, its disk gone): a command
    says so in one line and exits 1."""


class TicketError(FieldwatchError):
    """A service-desk request was refused; `code` is short and machine-readable."""

    code = "ticket_error"


class TicketNotFound(TicketError):
    code = "not_found"

    def __init__(self, ticket_id: int) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"no ticket {ticket_id}")


class TransitionRefused(TicketError):
    """The action is not allowed from the ticket's state (or its input is invalid)."""

    code = "refused"


class AccountError(FieldwatchError):
    """A desk account change was refused (collector/web/accounts/): the message says why."""


class EnrollmentRefused(FieldwatchError):
    """An enrollment token was refused; `reason` is short and machine-readable (forged, used,
    expired, retired)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class ProvisioningError(FieldwatchError):
    """The broker did not create, change or remove an account (its answer, or no answer)."""
