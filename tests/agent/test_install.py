"""`fieldwatch agent install/uninstall`: the unit is hardened, valid for systemd, and the real
install/uninstall write and remove it (into a temporary root: no systemd runs here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fieldwatch.agent.config import AgentConfig
from fieldwatch.agent.install import UnitOptions, render_unit

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
    assert main(["agent", "install", "--config", str(cfg), "--root", str(root)]) == 0
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
