"""Config files: validated at the door, every mistake located, secrets never shown."""

from pathlib import Path

import pytest
from fieldwatch.agent.config import AgentConfig
from fieldwatch.collector.config import CollectorConfig

from fieldwatch.cli.up import UpConfig
from fieldwatch.config import BrokerConfig, load_config
from fieldwatch.durations import format_duration, parse_duration
from fieldwatch.errors import ConfigError

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize(("model", "name"), [(AgentConfig, "agent.yaml"),
                                             (CollectorConfig, "collector.yaml"),
                                             (UpConfig, "fieldwatch.yaml")])
def test_shipped_configs_are_valid(model, name: str) -> None:
    load_config(model, ROOT / "config" / name)


@pytest.mark.parametrize(("text", "expected"), [
    ("sitee: hq\n", "f.yaml:1:1: sitee: unknown key"),
    ("interval: soon\n", "f.yaml:1:11: interval: expected a duration"),
    ("site: a/b\n", "f.yaml:1:7: site: must be 1-128 characters"),
    ("broker:\n  port: 99999\n", "f.yaml:2:9: broker.port: expected an integer <= 65535"),
    ("broker:\n  password_env: A\n  password_file: /x\n", "f.yaml:2:3: broker: give"),
    ("sources:\n  cpu: {per_cor: true}\n", "f.yaml:2:9: sources.cpu.per_cor: unknown key"),
    ("- a\n- b\n", "f.yaml:1:1: expected a mapping"),
    ("site: [\n", "f.yaml:2:1: invalid YAML"),
    ("site: a\nsite: b\n", "f.yaml:2:1: duplicate key 'site'"),
])
def test_each_class_of_mistake_is_located(tmp_path: Path, text: str, expected: str) -> None:
    f = tmp_path / "f.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(AgentConfig, f)
    assert expected.replace("f.yaml", str(f)) in str(info.value)


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    f = tmp_path / "f.yaml"
    f.write_text("sitee: hq\ninterval: soon\n")
    with pytest.raises(ConfigError) as info:
        load_config(AgentConfig, f)
    assert len(info.value.problems) == 2


def test_password_from_env_or_file_never_in_repr(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_PW", "s3cret-env")
    b = BrokerConfig(username="u", password_env="FW_PW")
    assert b.password().get_secret_value() == "s3cret-env"
    assert "s3cret" not in repr(b.password()) and "s3cret" not in str(b)
    (tmp_path / "pw").write_text("s3cret-file\n")
    assert BrokerConfig(password_file=tmp_path / "pw").password().get_secret_value() == \
        "s3cret-file"
    monkeypatch.delenv("FW_PW")
    with pytest.raises(ConfigError, match="FW_PW is not set"):
        b.password()


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("10s", 10), ("5m", 300),
                                               ("1h30m", 5400), ("7d", 604800), (12, 12)])
def test_durations(text, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5", "5x", "m5", "-1s", "5m 3s", True, -3])
def test_bad_durations(bad) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration_round_trips() -> None:
    for s in (0, 0.5, 1, 59, 60, 90, 3600, 86400, 604800):
        assert parse_duration(format_duration(s)) == s


def test_struct_sections_inside_collector_models_are_located(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("client_id: c\nbroker:\n  port: 99999\n  hots: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(CollectorConfig, f)
    assert [str(p) for p in info.value.problems] == [
        f"{f}:3:9: broker.port: expected an integer <= 65535",
        f"{f}:4:3: broker.hots: unknown key (check spelling; see the commented example config)"]
    u = tmp_path / "u.yaml"
    u.write_text("agent:\n  interval: soon\n")
    with pytest.raises(ConfigError, match=r"u.yaml:2:13: agent.interval: expected a duration"):
        load_config(UpConfig, u)
