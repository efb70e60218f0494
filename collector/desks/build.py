"""Config → desk objects, once at start-up (credentials read here; a missing one fails now)."""

from __future__ import annotations

import ssl

import httpx
from fieldwatch.collector.desks import glpi, jira, pagerduty, servicenow, webhook, zammad
from fieldwatch.collector.desks.config import (
    EmailDesk,
    GlpiDesk,
    JiraDesk,
    PagerDutyDesk,
    ServiceNowDesk,
    TargetConfig,
    WebhookDesk,
    ZammadDesk,
)
from fieldwatch.collector.desks.model import Desk
from fieldwatch.collector.notify.email import Email


def build_desk(cfg: TargetConfig, client: httpx.Client) -> Desk:
    """One desk; its HTTP requests go through `client` (see `http_client`)."""
    match cfg:
        case WebhookDesk():
            secret = cfg.secret.value().get_secret_value().encode() if cfg.secret else None
            return webhook.Webhook(cfg.name, client, str(cfg.url), secret)
        case PagerDutyDesk():
            return pagerduty.PagerDuty(cfg.name, client, str(cfg.url),
                                       cfg.routing_key.value().get_secret_value(), cfg.severity)
        case JiraDesk():
            auth = jira.auth_header(cfg.email, cfg.api_token.value().get_secret_value())
            api = jira.JiraApi(str(cfg.url), auth, cfg.project, cfg.issue_type, cfg.search_path)
            return jira.Jira(cfg.name, client, api, cfg.resolve_transition,
                             cfg.reopen_transition, cfg.acknowledge_transition)
        case ZammadDesk():
            zapi = zammad.ZammadApi(str(cfg.url), cfg.token.value().get_secret_value(),
                                    cfg.group, cfg.customer, cfg.priority)
            return zammad.Zammad(cfg.name, client, zapi, cfg.resolved_state, cfg.reopened_state)
        case GlpiDesk():
            gapi = glpi.GlpiApi(str(cfg.url), cfg.app_token.value().get_secret_value(),
                                cfg.user_token.value().get_secret_value(), cfg.urgency,
                                cfg.entity)
            return glpi.Glpi(cfg.name, client, gapi)
        case ServiceNowDesk():
            sauth = servicenow.auth_header(cfg.username, cfg.password.value().get_secret_value())
            sapi = servicenow.ServiceNowApi(str(cfg.url), sauth, cfg.urgency, cfg.impact,
                                            cfg.assignment_group, cfg.caller_id)
            return servicenow.ServiceNow(cfg.name, client, sapi, cfg.resolved_state,
                                         cfg.reopened_state, cfg.close_code)
        case EmailDesk():
            tls = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
            return Email(cfg.name, cfg.host, cfg.port, cfg.sender, cfg.team_addresses,
                         cfg.default_addresses, cfg.person_addresses, cfg.starttls, cfg.username,
                         cfg.password.value().get_secret_value() if cfg.password else None,
                         tls, cfg.timeout)
    raise TypeError(f"unknown desk config {type(cfg).__name__}")  # pragma: no cover


def http_client(timeout: float = 10.0) -> httpx.Client:
    return httpx.Client(timeout=timeout, headers={"User-Agent": "fieldwatch"},
                        follow_redirects=False)
