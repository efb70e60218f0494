"""Bad agent config: every class of mistake is a located message and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from fieldwatch.agent.config import AgentConfig

from fieldwatch.cli import main
from fieldwatch.config import load_config

SHIPPED = Path(__file__).parents[2] / "config" / "agent.yaml"


@pytest.mark.parametrize(("text", "expect"), [
    ("site: hq\ninterval: 10 minutes\n", "x.yaml:2:11: interval: expected a duration"),
    ("site: hq\ninterval: 10ms\n", "x.yaml:2:11: interval: must be at least 100ms"),
    ("site: hq\ndevise: web-01\n", "x.yaml:2:1: devise: unknown key"),
    ("device: a/b\n", "x.yaml:1:9: device: must be 1-128 characters"),
    ("broker: {port: 99999}\n", "x.yaml:1:16: broker.port: expected an integer <= 65535"),
    ("broker: {password_env: A, password_file: /p}\n",
     "x.yaml:1:9: broker: give password_env or password_file, not both"),
    ("broker:\n  tls: {ca: /c, certfile: /c}\n", "x.yaml:2:17: broker.tls.certfile: unknown key"),
    ("sources:\n  cpu: {per_core: maybe}\n",
     "x.yaml:2:19: sources.cpu.per_core: expected true or false, got a string"),
    ("sources:\n  gpu: {enabled: true}\n", "x.yaml:2:3: sources.gpu: unknown key"),
    ("sources:\n  diskio: {exclude: ['(']}\n",
     "x.yaml:2:21: sources.diskio.exclude: '(' is not a valid regular expression"),
    ("sources:\n  smart: {devices: ['/dev/sda; reboot']}\n",
     "x.yaml:2:20: sources.smart.devices: '/dev/sda; reboot' is not a /dev path"),
    ("sources:\n  processes:\n    watch:\n      - {name: web, process: a, service: a.service}\n",
     "x.yaml:4:9: sources.processes.watch.0: give exactly one of process, cmdline or service"),
    ("sources:\n  processes:\n    watch:\n      - {name: w, process: a}\n"
     "      - {name: w, process: b}\n",
     "x.yaml:4:7: sources.processes.watch: names must be unique; repeated: w"),
    ("buffer: {max_bytes: 1000}\n", "x.yaml:1:21: buffer.max_bytes: expected an integer >= 65536"),
    ("buffer: {max_age: forever}\n", "x.yaml:1:19: buffer.max_age: expected a duration"),
    ("- site: hq\n", "x.yaml:1:1: expected a mapping of settings at the top level"),
    ("site: [hq\n", "x.yaml:2:1: "),  # YAML syntax
])
def test_each_class_of_mistake_is_located_and_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expect: str) -> None:
    cfg = tmp_path / "x.yaml"
    cfg.write_text(text)
    assert main(["agent", "run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert (str(tmp_path) + "/" + expect) in err, err


def test_all_problems_are_reported_at_once(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "x.yaml"
    cfg.write_text("interval: soon\ndevise: x\nbuffer: {max_bytes: 1}\n")
    assert main(["agent", "run", "--config", str(cfg)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 3


def test_missing_config_file_is_a_clear_error(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent", "run", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml:0:0: cannot read: No such file or directory" in capsys.readouterr().err


def test_shipped_example_config_is_valid() -> None:
    cfg = load_config(AgentConfig, SHIPPED)
    assert cfg.site == "hq" and cfg.interval == 10.0
    assert cfg.buffer.max_bytes >= 1024 * 1024


def test_password_is_never_in_the_config_repr(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_TEST_PW", "s3cret-value")
    cfg = tmp_path / "x.yaml"
    cfg.write_text("broker: {username: dev, password_env: FW_TEST_PW}\n")
    loaded = load_config(AgentConfig, cfg)
    pw = loaded.broker.password()
    assert pw is not None and pw.get_secret_value() == "s3cret-value"
    assert "s3cret" not in repr(loaded) and "s3cret" not in str(pw)
