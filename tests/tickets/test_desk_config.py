"""The shipped config/sla.yaml and config/teams.yaml load; mistakes are located."""

from __future__ import annotations

from pathlib import Path

import pytest
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.sla.policy import load_sla, shipped
from fieldwatch.collector.tickets.config import DeskConfig, ensure_token_file, load_desk
from fieldwatch.collector.tickets.routing import Facts, load_teams, pick_member, route

from fieldwatch.config import load_config
from fieldwatch.errors import ConfigError
from tests.tickets.helpers import teams

REPO = Path(__file__).resolve().parents[2]


def test_shipped_defaults_follow_design_section_1() -> None:
    p = load_sla()
    assert shipped("sla.yaml").exists()
    assert (p.targets["P1"].respond, p.targets["P1"].resolve) == (15 * 60, 4 * 3600)
    assert p.targets["P1"].calendar.always
    assert p.targets["P2"].respond == 2 * 3600 and not p.targets["P2"].calendar.always
    assert p.verify_window == 7 * 86400
    t = load_teams(REPO / "config" / "teams.yaml")
    assert route(t, Facts("disk_nearly_full", "hq", "x"), None).team == "hardware"


def test_collector_config_takes_a_desk_section(tmp_path: Path) -> None:
    f = tmp_path / "collector.yaml"
    f.write_text(f"desk:\n  sla: {REPO / 'config' / 'sla.yaml'}\n  tick: 10s\n"
                 "  webhook: http://127.0.0.1:9/hook\n")
    cfg = load_config(CollectorConfig, f)
    assert cfg.desk.tick == 10
    assert load_desk(cfg.desk).sla.targets["P3"].resolve == 40 * 3600


@pytest.mark.parametrize(("text", "problem"), [
    ("priorities: {P1: {respond: 1m, resolve: 1h}}", "targets missing for P2, P3"),
    ("calendars: {b: {timezone: Mars/Base, hours: {mon: ['09:00-17:00']}}}\n"
     "priorities: {}", "unknown time zone 'Mars/Base'"),
    ("calendars: {b: {hours: {mon: ['17:00-09:00']}}}\npriorities: {}", "start must be before"),
    ("escalation: [{name: a, clock: response, at: 'lots'}]\npriorities: {}",
     "expected a percentage"),
    ("priorities: {P1: {respond: 1m, resolve: 1h, calendar: nine2five}, "
     "P2: {respond: 1m, resolve: 1h}, P3: {respond: 1m, resolve: 1h}}",
     "no calendar named 'nine2five'"),
])
def test_sla_mistakes_are_reported_with_file_and_line(tmp_path: Path, text: str,
                                                      problem: str) -> None:
    f = tmp_path / "sla.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_sla(f)
    assert str(exc.value).startswith(f"{f}:")
    assert problem in str(exc.value)


def test_teams_mistakes_are_located(tmp_path: Path) -> None:
    f = tmp_path / "teams.yaml"
    f.write_text("teams: {a: {members: [{name: x}]}}\nroutes:\n  - {match: {rule: r}, "
                 "team: b}\n")
    with pytest.raises(ConfigError, match="no team named 'b'"):
        load_teams(f)
    f.write_text("teams: {a: {assign: random}}\n")
    with pytest.raises(ConfigError, match=r"teams.yaml:1:\d+: teams.a.assign"):
        load_teams(f)


def test_least_loaded_and_skills() -> None:
    t = teams()
    desk = route(t, Facts("other", "hq", "x"), None)
    assert desk is not None and desk.team == "desk"
    assert pick_member(t, desk, {"dana": 2, "eli": 1}, None) == "eli"
    assert pick_member(t, desk, {}, None) == "dana"  # ties go by roster order
    hw = route(t, Facts("disk_full", "hq", "x"), None)
    assert pick_member(t, hw, {}, "bo") == "alex"  # cy is unavailable: skipped


def test_api_tokens_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_TEST_TOKENS", "a, b")
    f = tmp_path / "tokens"
    f.write_text("# comment\nc\n\n")
    cfg = DeskConfig(api_token_env="FW_TEST_TOKENS", api_token_file=f)
    assert cfg.api_tokens() == {"a", "b", "c"}
    with pytest.raises(ConfigError, match="cannot read API tokens"):
        DeskConfig(api_token_file=tmp_path / "missing").api_tokens()
    token = ensure_token_file(tmp_path / "data" / "api-token")
    assert ensure_token_file(tmp_path / "data" / "api-token") == token
    assert (tmp_path / "data" / "api-token").stat().st_mode & 0o777 == 0o600
