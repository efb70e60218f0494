"""The `integrations:` config: documented examples validate, secrets stay secret, mistakes are
located."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml
from fieldwatch.collector.config import CollectorConfig
from fieldwatch.collector.desks.build import build_desk
from fieldwatch.collector.desks.config import IntegrationsConfig, Secret

from fieldwatch.config import load_config
from fieldwatch.errors import ConfigError

ROOT = Path(__file__).parents[2]


def test_the_example_in_docs_validates() -> None:
    text = (ROOT / "docs" / "desks.md").read_text()
    block = re.search(r"```yaml\n(integrations:.*?)```", text, re.S)
    assert block
    cfg = IntegrationsConfig.model_validate(yaml.safe_load(block.group(1))["integrations"])
    assert [t.type for t in cfg.targets] == ["webhook", "pagerduty", "jira", "zammad", "glpi",
                                             "servicenow", "email"]


def test_the_commented_section_of_the_shipped_config_validates(tmp_path: Path) -> None:
    text = (ROOT / "config" / "collector.yaml").read_text()
    start = text.index("# integrations:")
    block = text[start:].split("\n\n", 1)[0]  # the section ends at the first blank line
    section = "\n".join(line[2:] for line in block.splitlines() if line.startswith("# "))
    path = tmp_path / "c.yaml"
    path.write_text(section + "\n")
    cfg = load_config(CollectorConfig, path)
    assert len(cfg.integrations.targets) == 4


def test_mistakes_are_located(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("integrations:\n  targets:\n    - type: jira\n      name: j\n"
                    "      url: https://x\n      project: P\n      api_token: hunter2\n"
                    "    - {type: webhook, name: j, url: 'https://y'}\n")
    with pytest.raises(ConfigError) as info:
        load_config(CollectorConfig, path)
    text = str(info.value)
    assert "c.yaml:" in text and "api_token" in text
    assert "hunter2" not in text


def test_credentials_come_from_env_or_file_and_never_show(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Secret(env="A", file=tmp_path / "x")
    monkeypatch.setenv("FW_SNOW", "s3cr3t-pw")
    cfg = IntegrationsConfig.model_validate({"targets": [
        {"type": "servicenow", "name": "snow", "url": "https://x.service-now.com",
         "username": "svc", "password": {"env": "FW_SNOW"}}]})
    assert Secret(env="FW_SNOW").value().get_secret_value() == "s3cr3t-pw"
    assert "s3cr3t-pw" not in repr(Secret(env="FW_SNOW").value())
    with httpx.Client() as client:
        desk = build_desk(cfg.targets[0], client)
        assert "s3cr3t-pw" not in repr(desk.__dict__)  # only the derived header holds it
    monkeypatch.delenv("FW_SNOW")
    with pytest.raises(ConfigError, match="FW_SNOW is not set"), httpx.Client() as client:
        build_desk(cfg.targets[0], client)
    with pytest.raises(ConfigError, match="cannot read secret"):
        Secret(file=tmp_path / "missing").value()


def test_desk_names_are_unique() -> None:
    with pytest.raises(ValueError, match="unique: a"):
        IntegrationsConfig.model_validate({"targets": [
            {"type": "webhook", "name": "a", "url": "https://x"},
            {"type": "webhook", "name": "a", "url": "https://y"}]})
