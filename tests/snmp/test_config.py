"""The `snmp:` section of agent.yaml: located errors, secrets, and the agent's footprint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fieldwatch.agent.config import AgentConfig
from fieldwatch.agent.snmp.config import SnmpConfig

from fieldwatch.config import load_config
from fieldwatch.errors import ConfigError
from fieldwatch.structs import convert


def _load(tmp_path: Path, text: str) -> AgentConfig:
    p = tmp_path / "agent.yaml"
    p.write_text(text)
    return load_config(AgentConfig, p)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("snmp:\n  targets:\n    - device: sw1\n      host: 10.0.0.1\n      version: \"3\"\n",
     3, "version 3 needs a `v3:` user"),
    ("snmp:\n  targets:\n    - device: sw1\n      host: 10.0.0.1\n      comunity: x\n",
     5, "unknown key"),
    ("snmp:\n  targets:\n    - device: sw/1\n      host: 10.0.0.1\n", 3, "without '/'"),
    ("snmp:\n  targets:\n    - device: sw1\n      host: h\n      port: 70000\n", 5,
     "expected an integer <= 65535"),
    ("snmp:\n  targets:\n    - {device: a, host: h}\n    - {device: a, host: i}\n", 3,
     "two SNMP targets publish as device 'a'"),
    ("snmp:\n  targets:\n    - device: a\n      host: h\n      community: x\n"
     "      community_env: Y\n", 5, "give one of community, community_env"),
    ("snmp:\n  targets:\n    - device: a\n      host: h\n      version: \"3\"\n"
     "      v3: {user: u, priv_key: p}\n", 6, "a privacy key needs an auth key"),
    ("snmp:\n  traps: {enabled: true, port: -1}\n", 2, "expected an integer >= 0"),
])
def test_snmp_section_mistakes_are_located(tmp_path: Path, text: str, line: int,
                                           message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, text)
    [problem] = exc.value.problems
    assert problem.line == line, str(exc.value)
    assert message in problem.message


def test_secrets_from_env_and_file_never_in_repr(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "auth").write_text("file-auth-key\n")
    monkeypatch.setenv("FW_TEST_PRIV", "env-priv-key")
    cfg = convert(SnmpConfig, {"targets": [
        {"device": "a", "host": "h", "community": "inline-community"},
        {"device": "b", "host": "h", "version": "3",
         "v3": {"user": "u", "auth_key_file": str(tmp_path / "auth"),
                "priv_key_env": "FW_TEST_PRIV"}},
        {"device": "c", "host": "h", "community_env": "FW_TEST_UNSET"}]})
    a, b, c = cfg.targets
    assert a.community_value() == "inline-community"
    assert b.v3 is not None and (b.v3.auth(), b.v3.priv()) == ("file-auth-key", "env-priv-key")
    assert "inline-community" not in repr(cfg)
    with pytest.raises(ConfigError, match="community_env: FW_TEST_UNSET is not set"):
        c.community_value()


def test_unknown_profile_fails_at_agent_start(tmp_path: Path) -> None:
    from fieldwatch.agent.daemon import Agent

    cfg = _load(tmp_path, f"state_dir: {tmp_path / 'state'}\nsnmp:\n  targets:\n"
                          "    - {device: a, host: 127.0.0.1, profiles: [no-such-profile]}\n")
    with pytest.raises(ConfigError, match="SNMP profile 'no-such-profile' not found"):
        Agent(cfg)


def test_agent_without_snmp_does_not_import_pysnmp(tmp_path: Path) -> None:
    code = ("import sys\nfrom pathlib import Path\n"
            "from fieldwatch.agent.config import AgentConfig\n"
            "from fieldwatch.agent.daemon import Agent\n"
            f"Agent(AgentConfig(state_dir=Path({str(tmp_path)!r})))\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pysnmp', 'pyasn1'}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
