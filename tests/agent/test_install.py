"""`fieldwatch agent install/uninstall`: the unit is hardened, valid for systemd, and the real
install/uninstall write and remove it (into a temporary root: no systemd runs here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fieldwatch.agent.config import AgentConfig
from fieldwatch.agent.install import (
    Identity,
    UnitOptions,
    access_problem,
    interpreter_problems,
    render_unit,
    service_problems,
)

import fieldwatch.cli.agent
from fieldwatch.cli import main

HARDENING = ("NoNewPrivileges=yes", "ProtectSystem=strict", "Restart=always", "PrivateTmp=yes",
             "User=fieldwatch", "ProtectKernelModules=yes", "SystemCallFilter=@system-service",
             "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK")


def verify(unit_text: str, tmp_path: Path) -> str:
    """`systemd-analyze verify` output for the unit ("" when it has nothing to say)."""
    exe = shutil.which("systemd-analyze")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is not installed; .ci/run must install systemd")
        pytest.skip("systemd-analyze not installed (apt-get install systemd); CI runs this")
    d = tmp_path / "verify"
    d.mkdir(exist_ok=True)
    unit = d / "fieldwatch-agent.service"
    unit.write_text(unit_text)
    done = subprocess.run([exe, "verify", "--man=no", str(unit)], capture_output=True,
                          text=True, timeout=60, check=False)
    out = (done.stdout + done.stderr).strip()
    return out if done.returncode == 0 or out else f"exit {done.returncode}"


def _cfg(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agent.yaml"
    p.write_text(text)
    return p


def test_dry_run_prints_a_hardened_unit_systemd_accepts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(tmp_path, "site: hq\n")
    assert main(["agent", "install", "--config", str(cfg), "--dry-run",
                 "--root", str(tmp_path / "root")]) == 0
    unit = capsys.readouterr().out
    for line in HARDENING:
        assert line in unit.splitlines(), line
    assert f"-m fieldwatch.agent run --config {cfg}" in unit
    assert "StateDirectory=fieldwatch/agent" in unit
    assert "CapabilityBoundingSet=CAP_SYS_RAWIO" in unit  # SMART is on by default
    assert verify(unit, tmp_path) == ""
    assert not (tmp_path / "root").exists()  # a dry run changes nothing


def test_the_verify_check_catches_a_broken_unit(tmp_path: Path) -> None:
    good = render_unit(AgentConfig(), UnitOptions(config=tmp_path / "agent.yaml"))
    bad = good.replace("ProtectSystem=strict", "ProtectSystem=very")
    assert "ProtectSystem=very" in bad and "protect system" in verify(bad, tmp_path).lower()


@pytest.mark.parametrize(("yaml", "present", "absent"), [
    ("sources: {smart: {enabled: false}}\n",
     ["PrivateDevices=yes", "CapabilityBoundingSet=", "AmbientCapabilities="],
     ["SupplementaryGroups=disk", "CAP_SYS_RAWIO"]),
    ("state_dir: /opt/fw/state\n", ["ReadWritePaths=/opt/fw/state"], ["StateDirectory="]),
    ("snmp: {traps: {enabled: true, port: 162}}\n",
     ["CapabilityBoundingSet=CAP_SYS_RAWIO CAP_NET_BIND_SERVICE"], []),
])
def test_unit_follows_the_config(tmp_path: Path, yaml: str, present: list[str],
                                 absent: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent", "install", "--config", str(_cfg(tmp_path, yaml)), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for line in present:
        assert line in lines, line
    for text in absent:
        assert not any(text in ln for ln in lines), text
    assert verify("\n".join(lines) + "\n", tmp_path) == ""


def test_install_then_uninstall_into_a_root(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    cfg = _cfg(tmp_path, "site: hq\nstate_dir: /srv/fieldwatch\n")
    # as root: the checks of what the service user can read pass for files under tmp_path
    assert main(["agent", "install", "--config", str(cfg), "--root", str(root),
                 "--user", "root"]) == 0
    said = capsys.readouterr().out
    unit = root / "etc/systemd/system/fieldwatch-agent.service"
    assert f"wrote {unit}" in said
    assert f"created {root / 'srv/fieldwatch'}" in said
    assert "systemd is not running here" in said  # a non-live root never calls systemctl
    assert "ReadWritePaths=/srv/fieldwatch" in unit.read_text()
    assert oct(unit.stat().st_mode & 0o777) == "0o644"
    assert main(["agent", "uninstall", "--root", str(root)]) == 0
    assert f"removed {unit}" in capsys.readouterr().out
    assert not unit.exists()
    assert main(["agent", "uninstall", "--root", str(root)]) == 0
    assert "was not installed" in capsys.readouterr().out


def test_install_refuses_a_broken_config(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(tmp_path, "site: hq\nintervall: 10s\n")
    assert main(["agent", "install", "--config", str(cfg), "--root", str(tmp_path / "r")]) == 2
    assert f"{cfg}:2:1: intervall: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_dry_run_without_a_config_prints_the_unit_for_the_defaults(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "etc" / "agent.yaml"
    monkeypatch.setattr(fieldwatch.cli.agent, "DEFAULT_CONFIG", missing)
    assert main(["agent", "install", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert f"-m fieldwatch.agent run --config {missing}" in out
    assert f"note: {missing} does not exist yet" in err
    assert verify(out, tmp_path) == ""
    # not for a real install: that needs the config the service will read
    assert main(["agent", "install", "--root", str(tmp_path / "root")]) == 2
    assert not (tmp_path / "root").exists()


def test_an_interpreter_under_tmp_is_refused_and_nothing_installed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(tmp_path, "site: hq\n")
    root = tmp_path / "root"
    argv = ["agent", "install", "--config", str(cfg), "--root", str(root), "--user", "root",
            "--python", "/tmp/fw-venv/bin/python"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "error: interpreter /tmp/fw-venv/bin/python lies under /tmp" in err
    assert "nothing installed" in err and not root.exists()
    assert main([*argv, "--dry-run"]) == 0  # a dry run warns and prints the unit all the same
    out, err = capsys.readouterr()
    assert "ExecStart=/tmp/fw-venv/bin/python -m fieldwatch.agent" in out
    assert "warning: interpreter /tmp/fw-venv/bin/python lies under /tmp" in err


def test_an_interpreter_without_fieldwatch_is_refused() -> None:
    false = shutil.which("false") or "/bin/false"
    problems, packages = interpreter_problems(false, _probe_real)
    assert packages == []
    assert problems == [f"interpreter {false} cannot import fieldwatch.agent (exit 1): "]
    problems, packages = interpreter_problems(sys.executable, _probe_real)
    assert problems == []
    assert [p.name for p in packages] == ["fieldwatch", "agent"]  # checkout: /agent, not below


def _probe_real(argv: list[str]) -> tuple[int, str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can search (pytest's tmp_path sits in one private to root)."""
    d = Path(tempfile.mkdtemp(prefix="fw-install-test-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


def test_the_service_user_must_reach_the_config_and_the_files_it_names(open_dir: Path) -> None:
    tmp_path = open_dir
    secret = tmp_path / "etc" / "mqtt.pass"
    secret.parent.mkdir()
    secret.write_text("pw\n")
    cfg_path = _cfg(tmp_path, f"site: hq\nbroker: {{password_file: {secret}}}\n")
    from fieldwatch.config import load_config

    cfg = load_config(AgentConfig, cfg_path)
    opts = UnitOptions(config=cfg_path)
    nobody = Identity("fieldwatch")  # not created yet: world permissions only
    cfg_path.chmod(0o600)
    secret.chmod(0o640)
    os.chown(secret, 0, 0)
    problems = service_problems(cfg, opts, Identity("root", 0), _probe_real)
    assert problems == []  # root reads everything
    problems = [p for p in service_problems(cfg, opts, nobody, _probe_real)
                if not p.startswith(("interpreter", "fieldwatch package"))]
    assert problems == [
        f"config {cfg_path}: the service user fieldwatch cannot read it: -rw------- 0:0",
        f"file named in the config: {secret}: the service user fieldwatch cannot read it: "
        "-rw-r----- 0:0"]
    os.chown(secret, 0, 4242)  # the service user's group may read it
    assert access_problem(secret, Identity("fieldwatch", 4343, frozenset({4242})), 4,
                          "key") is None
    os.chown(cfg_path, 4343, 0)  # owned by the service user
    assert access_problem(cfg_path, Identity("fieldwatch", 4343), 4, "config") is None
    (tmp_path / "etc").chmod(0o700)
    assert access_problem(secret, Identity("fieldwatch", 4343, frozenset({4242})), 4,
                          "key") == (f"key {secret}: the service user fieldwatch cannot reach "
                                     f"it (no search permission on {tmp_path / 'etc'}): "
                                     "drwx------ 0:0")
