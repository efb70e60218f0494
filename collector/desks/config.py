"""External desks, outbox retry, Alertmanager and email: the `integrations:` section of
collector.yaml.

Credentials are never written inline: each is `{env: NAME}` or `{file: PATH}`, read when a
desk is built, and held as SecretStr so reprs and logs show `**********`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from fieldwatch.collector.desks.model import ACTIONS, Action
from pydantic import Field, HttpUrl, SecretStr, field_validator, model_validator

from fieldwatch.durations import Duration
from fieldwatch.errors import ConfigError, Problem
from fieldwatch.models import StrictModel


class Secret(StrictModel):
    """Where a credential lives: an environment variable or a file (first line used)."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Secret:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def value(self) -> SecretStr:
        if self.env is not None:
            found = os.environ.get(self.env)
            if found is None:
                raise ConfigError([Problem("<environment>", 0, 0, f"{self.env} is not set")])
            return SecretStr(found)
        assert self.file is not None
        try:
            return SecretStr(self.file.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ConfigError([Problem(str(self.file), 0, 0,
                                       f"cannot read secret: {exc.strerror}")]) from None


InboundState = Literal["open", "acknowledged", "resolved"]


class InboundConfig(StrictModel):
    """Changes made in the desk coming back (collector/desks/inbound, docs/desks.md): the
    desk's webhooks at /api/v1/inbound/<desk name>, verified with `secret`, and a periodic
    reconcile that reads the desk's state of open tickets whose webhooks may have been lost."""

    secret: Secret  # the desk's signing secret (ServiceNow: the shared token or password)
    username: str = "fieldwatch"  # ServiceNow basic auth: the user its REST message sends
    states: dict[str, InboundState] = {}  # desk state name (GLPI: number) → ours; over defaults
    reconcile: Duration = 300.0  # how often open tickets' desk state is read; 0: never
    reconcile_batch: int = Field(100, ge=1, le=10_000)  # tickets read per desk per round
    keep_seen: Duration = 7 * 86400.0  # replay window: deliveries older than this are refused
    api_url: HttpUrl = HttpUrl("https://api.pagerduty.com")  # PagerDuty REST API (reconcile)
    api_token: Secret | None = None  # PagerDuty REST API key; without it no reconcile

    @field_validator("states", mode="before")
    @classmethod
    def _keys(cls, v: object) -> object:
        return {str(k): s for k, s in v.items()} if isinstance(v, dict) else v


class DeskBase(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    actions: list[Action] = list(ACTIONS)  # which ticket changes this desk hears of
    timeout: Duration = 10.0
    teams: list[str] = []  # only tickets of these teams; empty: every ticket

    @field_validator("actions")
    @classmethod
    def _some(cls, v: list[Action]) -> list[Action]:
        if not v:
            raise ValueError("list at least one action")
        return v


class WebhookDesk(DeskBase):
    type: Literal["webhook"]
    url: HttpUrl
    secret: Secret | None = None  # HMAC-SHA256 key for the X-Fieldwatch-Signature header


Severity = Literal["critical", "error", "warning", "info"]


class PagerDutyDesk(DeskBase):
    type: Literal["pagerduty"]
    inbound: InboundConfig | None = None  # the desk's changes back (webhooks, reconcile)
    url: HttpUrl = HttpUrl("https://events.pagerduty.com/v2/enqueue")
    routing_key: Secret
    severity: dict[str, Severity] = {"P1": "critical", "P2": "error", "P3": "warning"}


class JiraDesk(DeskBase):
    type: Literal["jira"]
    inbound: InboundConfig | None = None  # the desk's changes back (webhooks, reconcile)
    url: HttpUrl
    project: str
    issue_type: str = "Task"
    email: str | None = None  # with api_token: Jira Cloud basic auth; without: bearer (PAT)
    api_token: Secret
    search_path: str = "/rest/api/2/search"  # Jira Cloud: /rest/api/2/search/jql
    resolve_transition: str = "Done"
    reopen_transition: str = "Reopen"
    acknowledge_transition: str | None = None  # e.g. "In Progress"; None: a comment only


class ZammadDesk(DeskBase):
    type: Literal["zammad"]
    inbound: InboundConfig | None = None  # the desk's changes back (webhooks, reconcile)
    url: HttpUrl
    token: Secret
    group: str = "Users"
    customer: str  # the customer (email or login) tickets are opened for
    resolved_state: str = "closed"
    reopened_state: str = "open"
    priority: dict[str, str] = {"P1": "3 high", "P2": "2 normal", "P3": "1 low"}


class GlpiDesk(DeskBase):
    type: Literal["glpi"]
    inbound: InboundConfig | None = None  # the desk's changes back (webhooks, reconcile)
    url: HttpUrl  # …/apirest.php
    app_token: Secret
    user_token: Secret
    urgency: dict[str, int] = {"P1": 5, "P2": 4, "P3": 3}
    entity: int | None = None


class ServiceNowDesk(DeskBase):
    type: Literal["servicenow"]
    inbound: InboundConfig | None = None  # the desk's changes back (webhooks, reconcile)
    url: HttpUrl  # https://INSTANCE.service-now.com
    username: str | None = None  # with password: basic auth; without: bearer token
    password: Secret
    assignment_group: str | None = None
    caller_id: str | None = None
    urgency: dict[str, str] = {"P1": "1", "P2": "2", "P3": "3"}
    impact: dict[str, str] = {"P1": "1", "P2": "2", "P3": "3"}
    resolved_state: str = "6"
    reopened_state: str = "2"
    close_code: str = "Solved (Permanently)"


class EmailDesk(DeskBase):
    """Email over SMTP: new tickets to their team, escalation steps to whom the step names."""

    type: Literal["email"]
    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    ca_file: Path | None = None  # trust this CA for STARTTLS (default: the system store)
    username: str | None = None
    password: Secret | None = None
    sender: str = "fieldwatch@localhost"
    team_addresses: dict[str, list[str]] = {}
    person_addresses: dict[str, str] = {}  # team members (teams.yaml names) → address
    default_addresses: list[str] = []  # tickets without a team, or of a team not listed
    actions: list[Action] = ["open", "escalate"]


TargetConfig = Annotated[WebhookDesk | PagerDutyDesk | JiraDesk | ZammadDesk | GlpiDesk
                       | ServiceNowDesk | EmailDesk, Field(discriminator="type")]


class RetryPolicy(StrictModel):
    """Exponential backoff with jitter: base·factor^(n-1), capped, times 1 - jitter·U(0,1)."""

    base: Duration = 1.0
    factor: float = Field(2.0, ge=1.0)
    max_delay: Duration = 600.0
    jitter: float = Field(0.5, ge=0.0, le=1.0)
    max_retry_after: Duration = 3600.0  # a desk's Retry-After is honoured up to this


class AlertmanagerConfig(StrictModel):
    """The intake at /api/v1/alertmanager. It has its own bearer token (`fieldwatch up` makes
    one); without one configured it refuses everyone, unless `auth: none` says to take
    anyone's alerts — unsafe, for a listener only Alertmanager can reach."""

    enabled: bool = True
    auth: Literal["token", "none"] = "token"
    token: Secret | None = None  # bearer token Alertmanager must send (http_config.authorization)
    site: str = "prometheus"  # site of tickets whose alert has no `site` label
    device_labels: list[str] = ["device", "instance", "job"]  # first present names the device
    severity: dict[str, Literal["P1", "P2", "P3"]] = {
        "critical": "P1", "page": "P1", "error": "P2", "warning": "P2", "info": "P3"}
    default_severity: Literal["P1", "P2", "P3"] = "P3"
    keep_seen: Duration = 30 * 86400.0  # how long the delivery log is kept

    @model_validator(mode="after")
    def _token_or_none(self) -> AlertmanagerConfig:
        if self.auth == "none" and self.token is not None:
            raise ValueError("auth: none takes no token (drop one of them)")
        return self


class IntegrationsConfig(StrictModel):
    instance: str = Field("fieldwatch", pattern=r"^[A-Za-z0-9_.-]{1,32}$")  # in references
    targets: list[TargetConfig] = []
    retry: RetryPolicy = RetryPolicy()
    concurrency: int = Field(4, ge=1, le=64)  # deliveries in flight per desk (distinct tickets)
    poll: Duration = 0.1  # how often the worker looks for due deliveries when idle
    lease: Duration = 30.0  # a collector that stops renewing hands its desks over after this
    keep_delivered: Duration = 30 * 86400.0  # delivered rows are kept this long (audit)
    alertmanager: AlertmanagerConfig = AlertmanagerConfig()

    @field_validator("targets")
    @classmethod
    def _unique(cls, v: list[TargetConfig]) -> list[TargetConfig]:
        names = [d.name for d in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"desk names must be unique: {', '.join(dup)}")
        return v
