"""The service desk's settings (`desk:` in collector.yaml) and the policy they load into."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from fieldwatch.collector.sla.policy import SlaPolicy, load_sla, shipped
from fieldwatch.collector.tickets.routing import TeamsSpec, load_teams
from pydantic import AnyHttpUrl

from fieldwatch.durations import Duration
from fieldwatch.errors import ConfigError, Problem
from fieldwatch.models import StrictModel
from fieldwatch.yamlmarks import load_yaml_file


class DeskConfig(StrictModel):
    sla: Path | None = None  # config/sla.yaml; None: the shipped defaults (DESIGN §1)
    teams: Path | None = None  # config/teams.yaml; None: rule teams, nobody auto-assigned
    tick: Duration = 30.0  # how often SLA escalations and verification closes are checked
    webhook: AnyHttpUrl | None = None  # escalation notifications (a team's own webhook wins)
    api_token_env: str | None = "FIELDWATCH_API_TOKEN"  # API bearer token(s), comma-separated
    api_token_file: Path | None = None  # or one token per line in a file
    update_event_every: Duration = 3600.0  # at most one `alert_update` timeline event this often

    def api_tokens(self) -> frozenset[str]:
        """The accepted API tokens, read now (rotation needs no restart). Never logged."""
        found: set[str] = set()
        if self.api_token_env and os.environ.get(self.api_token_env):
            found.update(t.strip() for t in os.environ[self.api_token_env].split(","))
        if self.api_token_file:
            try:
                text = self.api_token_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError([Problem(str(self.api_token_file), 0, 0,
                                           f"cannot read API tokens: {exc.strerror}")]) from None
            found.update(line.strip() for line in text.splitlines())
        return frozenset(t for t in found if t and not t.startswith("#"))


@dataclass(frozen=True)
class DeskPolicy:
    """Everything the ticket logic needs to decide, loaded once."""

    sla: SlaPolicy = field(default_factory=load_sla)
    teams: TeamsSpec = field(default_factory=TeamsSpec)
    update_event_every: float = 3600.0


def load_desk(cfg: DeskConfig) -> DeskPolicy:
    policy = DeskPolicy(load_sla(cfg.sla), load_teams(cfg.teams), cfg.update_event_every)
    _check_step_teams(policy, cfg.sla or shipped("sla.yaml"))
    return policy


def _check_step_teams(policy: DeskPolicy, sla_file: Path) -> None:
    """An escalation step paging `oncall:<team>` / `next:<team>` names a team teams.yaml has."""
    bad = [(i, s.notify) for i, s in enumerate(policy.sla.steps)
           if ":" in s.notify and s.notify.partition(":")[2] not in policy.teams.teams]
    if bad:
        doc = load_yaml_file(sla_file)
        raise ConfigError([doc.problem(("escalation", i, "notify"),
                                       f"escalation.{i}.notify: no team named "
                                       f"{who.partition(':')[2]!r} in the teams file")
                           for i, who in bad])


def ensure_token_file(path: Path) -> str:
    """A token for `fieldwatch up`: kept in the data directory, readable by its owner only."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip().splitlines()[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token
