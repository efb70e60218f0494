"""The `notifications:` section, teams.yaml's on-call entries and the SLA steps that page
through them: every problem located as file:line:col, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.notify.runtime import build_channels, registration
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.config import DeskConfig, load_desk
from fieldwatch.collector.tickets.routing import TeamsSpec

from fieldwatch.clock import FakeClock
from fieldwatch.config import load_config
from fieldwatch.errors import ConfigError
from fieldwatch.models import validate
from fieldwatch.yamlmarks import load_yaml
from tests.notify.helpers import TEAMS, notifications, teams


def problems(tmp_path: Path, text: str) -> list[str]:
    f = tmp_path / "collector.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(CollectorConfig, f)
    return [str(p).replace(str(f), "collector.yaml") for p in err.value.problems]


def test_mistakes_are_located(tmp_path: Path) -> None:
    got = problems(tmp_path, """\
notifications:
  timezone: Mars/Olympus
  channels:
    - {name: sms, url: "smseagle://t@gw/+49170", contact: phone}
    - {name: chat, url: slack-without-scheme}
    - name: wecom
      url: "wecombot://k"
      templates:
        zh: {title: "{severity} {secret.__class__}", body: "{value!r}"}
  routes:
    - match: {severity: [P4], actions: []}
      hours: {mon-fry: ["09:00-17:00"]}
      notify: ["oncall:"]
      channels: [sms]
      contnue: true
""")
    want = [
        "collector.yaml:2:13: notifications.timezone: unknown time zone 'Mars/Olympus'",
        "collector.yaml:4:7: notifications.channels.0: url: a personal channel (with `contact`) "
        "needs `{to}`",
        "collector.yaml:5:7: notifications.channels.1: url: expected an Apprise URL",
        "collector.yaml:9:13: notifications.channels.2.templates.zh: title: unknown "
        "placeholder {secret.__class__}",
        "collector.yaml:11:26: notifications.routes.0.match.severity.0: Input should be 'P1'",
        "collector.yaml:11:40: notifications.routes.0.match.actions: list at least one",
        "collector.yaml:12:14: notifications.routes.0.hours: 'mon-fry': days are mon..sun",
        "collector.yaml:13:15: notifications.routes.0.notify: cannot notify 'oncall:'",
        "collector.yaml:15:7: notifications.routes.0.contnue: unknown key",
    ]
    assert len(got) == len(want), "\n".join(got)
    for g, w in zip(got, want, strict=True):
        assert g.startswith(w), f"{g!r} does not start with {w!r}"


def test_template_conversions_are_refused(tmp_path: Path) -> None:
    (p,) = problems(tmp_path, """\
notifications:
  channels:
    - name: x
      url: "json://127.0.0.1/x"
      templates: {en: {title: "{title}", body: "{value!r}"}}
""")
    assert "body: placeholder {value!r}: conversions are not allowed" in p


def test_route_naming_an_unknown_channel(tmp_path: Path) -> None:
    (p,) = problems(tmp_path, """\
notifications:
  channels: [{name: sms, url: "json://127.0.0.1/x"}]
  routes: [{channels: [sms, pager]}]
""")
    assert p.startswith("collector.yaml:2:3: notifications: routes.0.channels: no channel "
                        "named 'pager' (defined: sms)")


def test_registration_is_what_the_routes_can_match() -> None:
    cfg = notifications("""
channels: [{name: a, url: "json://127.0.0.1/a"}, {name: b, url: "json://127.0.0.1/b"},
           {name: c, url: "json://127.0.0.1/c"}]
routes:
  - {match: {teams: [hw], actions: [open]}, channels: [a, b]}
  - {match: {teams: [net], actions: [escalate]}, channels: [a]}
  - {match: {actions: [resolve]}, channels: [b]}
""")
    a, b = registration(cfg, "a"), registration(cfg, "b")
    assert a is not None and (a.actions, a.teams) == (["open", "escalate"], ["hw", "net"])
    assert b is not None and (b.actions, b.teams) == (["open", "resolve"], [])
    assert registration(cfg, "c") is None
    built = build_channels(cfg, teams(), None, FakeClock(), Stats())  # type: ignore[arg-type]
    assert set(built.desks) == {"a", "b"}


def test_a_url_apprise_cannot_use_refuses_to_start() -> None:
    cfg = notifications("""
channels: [{name: x, url: "nosuchservice://token"}]
routes: [{channels: [x]}]
""")
    with pytest.raises(ConfigError, match="channel x: Apprise cannot use this nosuchservice://"):
        build_channels(cfg, teams(), None, FakeClock(), Stats())  # type: ignore[arg-type]


def test_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = notifications("""
channels: [{name: x, url: {env: FW_TEST_CHAT_URL}}]
routes: [{channels: [x]}]
""")
    with pytest.raises(ConfigError, match="FW_TEST_CHAT_URL is not set"):
        build_channels(cfg, teams(), None, FakeClock(), Stats())  # type: ignore[arg-type]
    monkeypatch.setenv("FW_TEST_CHAT_URL", "json://127.0.0.1/x")
    built = build_channels(cfg, teams(), None, FakeClock(), Stats())  # type: ignore[arg-type]
    assert "json://" not in repr(built.desks["x"])  # the URL (a token) never in a repr


# -- teams.yaml and sla.yaml ------------------------------------------------------------------

def test_sla_step_paging_an_unknown_team_is_located(tmp_path: Path) -> None:
    (tmp_path / "teams.yaml").write_text(TEAMS)
    (tmp_path / "sla.yaml").write_text("""\
priorities:
  P1: {respond: 15m, resolve: 4h}
  P2: {respond: 2h, resolve: 8h}
  P3: {respond: 8h, resolve: 40h}
escalation:
  - {name: a, clock: response, at: 50%, notify: "next:hardware", priorities: [P1]}
  - {name: b, clock: response, at: 90%, notify: "oncall:plumbing"}
""")
    with pytest.raises(ConfigError) as err:
        load_desk(DeskConfig(sla=tmp_path / "sla.yaml", teams=tmp_path / "teams.yaml"))
    (p,) = err.value.problems
    assert (Path(p.file).name, p.line) == ("sla.yaml", 7)
    assert "no team named 'plumbing'" in p.message


def test_sla_step_notify_forms(tmp_path: Path) -> None:
    (tmp_path / "sla.yaml").write_text("""\
priorities:
  P1: {respond: 15m, resolve: 4h}
  P2: {respond: 2h, resolve: 8h}
  P3: {respond: 8h, resolve: 40h}
escalation:
  - {name: a, clock: response, at: 50%, notify: pager}
""")
    with pytest.raises(ConfigError, match=r"sla.yaml:6:49: escalation.0.notify: 'pager'"):
        load_desk(DeskConfig(sla=tmp_path / "sla.yaml"))


def test_member_language_is_checked() -> None:
    with pytest.raises(ConfigError, match="teams.yaml:4:35: teams.hw.members.0.language"):
        validate(TeamsSpec, load_yaml("""
teams:
  hw:
    members: [{name: a, language: "e n"}]
""", "teams.yaml"), error=ConfigError)


def test_the_commented_section_of_the_shipped_config_validates(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "config" / "collector.yaml").read_text()
    part = text[text.index("# notifications:"):text.index("# External desks")]
    f = tmp_path / "c.yaml"
    f.write_text("\n".join(line[2:] for line in part.splitlines() if line.startswith("# ")))
    cfg = load_config(CollectorConfig, f).notifications
    assert [c.name for c in cfg.channels] == ["oncall-sms", "ops-slack"] and len(cfg.routes) == 2
