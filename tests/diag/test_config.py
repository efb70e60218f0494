"""The commented diag example in config/agent.yaml is valid; unsafe configs are refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from fieldwatch.agent.diag.config import DiagConfig

from fieldwatch.errors import ConfigError
from fieldwatch.structs import convert

ROOT = Path(__file__).parents[2]


def test_the_commented_example_validates() -> None:
    text = (ROOT / "config" / "agent.yaml").read_text()
    block = text[text.index("# diag:"):]
    doc = yaml.safe_load("\n".join(re.sub(r"^# ?", "", line) for line in block.splitlines()))
    cfg = convert(DiagConfig, doc["diag"])
    assert cfg.policy.checks["restart_service"] == "ask"
    assert cfg.commands["flush_cache"].changing


@pytest.mark.parametrize(("cfg", "message"), [
    ({"policy": {"changing": "auto"}}, "need an approval"),
    ({"policy": {"checks": {"restart_service": "auto"}}}, "change the device"),
    ({"commands": {"x": {"argv": ["/bin/true"]}}, "policy": {"checks": {"x": "auto"}}},
     "change the device"),
    ({"commands": {"ping": {"argv": ["/bin/true"]}}}, "shadow"),
    ({"commands": {"x": {"argv": ["rm"]}}}, "absolute path"),
    ({"services": ["nginx; reboot"]}, "plain unit"),
    ({"services": ["nginx\n"]}, "plain unit"),
    ({"spools": {"all": "/"}}, "other than /"),
])
def test_unsafe_configs_are_refused(cfg: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        convert(DiagConfig, cfg)


def test_the_audit_log_bounds_have_documented_defaults_and_limits() -> None:
    cfg = convert(DiagConfig, {})
    assert (cfg.audit_max_bytes, cfg.audit_keep) == (10 * 2**20, 5)
    example = convert(DiagConfig, {"audit_max_bytes": 4096, "audit_keep": 100})
    assert (example.audit_max_bytes, example.audit_keep) == (4096, 100)
    for bad in ({"audit_max_bytes": 100}, {"audit_keep": 0}, {"audit_keep": 101}):
        with pytest.raises(ConfigError, match="audit_"):
            convert(DiagConfig, bad)
