"""Real SNMP agents for tests and benchmarks: net-snmp snmpd and snmpsim, on free UDP ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

COMMUNITY = "fwtest"
V3_USER, V3_AUTH, V3_PRIV = "fwuser", "fw-auth-pass", "fw-priv-pass"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(port: int, community: str) -> bool:
    """True once the agent answers a GET of sysUpTime (net-snmp's snmpget, no pysnmp)."""
    r = subprocess.run(["snmpget", "-v2c", "-c", community, "-t", "0.3", "-r", "0", "-On",
                        f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0"],
                       capture_output=True, check=False, env={**os.environ, "MIBS": ""})
    return r.returncode == 0


class Snmpd:
    """A private net-snmp snmpd: full view for a v2c community and a v3 authPriv SHA/AES user,
    its own config, persistent dir and pid file. The address is in the config file only."""

    def __init__(self, workdir: Path) -> None:
        self.binary = shutil.which("snmpd") or "/usr/sbin/snmpd"
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "persist").mkdir(exist_ok=True)
        self.port = free_udp_port()
        self.conf = self.dir / "snmpd.conf"
        self.conf.write_text(
            f"agentAddress udp:127.0.0.1:{self.port},udp6:[::1]:{self.port}\n"
            "view all included .1\n"
            f"rocommunity {COMMUNITY} 127.0.0.1 -V all\nrocommunity6 {COMMUNITY} ::1 -V all\n"
            f'createUser {V3_USER} SHA "{V3_AUTH}" AES "{V3_PRIV}"\n'
            f"rouser {V3_USER} priv -V all\n"
            "sysName fieldwatch-test\nsysLocation lab\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Snmpd:
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(self.dir / "persist"),
               "MIBS": "", "MIBDIRS": str(self.dir)}  # no MIB parsing noise
        with open(self.dir / "snmpd.log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-f", "-Lo", "-C", "-c", str(self.conf),
                 "-p", str(self.dir / "snmpd.pid")], stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 10
        while not _answers(self.port, COMMUNITY):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                _stop(self.proc)
                raise RuntimeError("snmpd did not start: " + (self.dir / "snmpd.log").read_text())
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


def write_snmprec(path: Path, records: Iterable[tuple[str, int, object]]) -> Path:
    """An snmpsim data file; records are (oid, BER tag, value), sorted here by OID."""
    rows = sorted(records, key=lambda r: tuple(int(p) for p in r[0].split(".")))
    path.write_text("".join(f"{oid}|{tag}|{value}\n" for oid, tag, value in rows))
    return path


class Snmpsim:
    """One snmpsim process serving every `<community>.snmprec` in its data dir on one port."""

    def __init__(self, workdir: Path, devices: Mapping[str, Path]) -> None:
        self.dir = workdir
        self.data = workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        for community, source in devices.items():
            # a copy, not a symlink: snmpsim names the community after the resolved path
            shutil.copyfile(source, self.data / f"{community}.snmprec")
        self.port = free_udp_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.probe = next(iter(devices))

    def start(self, timeout: float = 60.0) -> Snmpsim:
        args = [sys.executable, "-m", "snmpsim.commands.responder",
                f"--data-dir={self.data}", f"--cache-dir={self.dir / 'cache'}",
                f"--agent-udpv4-endpoint=127.0.0.1:{self.port}", "--logging-method=null"]
        env = {**os.environ, "SNMPSIM_ALLOW_ROOT": "true"}  # CI runs as root in a throwaway VM
        with open(self.dir / "snmpsim.log", "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + timeout
        while not _answers(self.port, self.probe):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                _stop(self.proc)
                raise RuntimeError("snmpsim did not start: "
                                   + (self.dir / "snmpsim.log").read_text()[-3000:])
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


# -- recorded-style devices ---------------------------------------------------------------

def recorded_walk(name: str) -> Path:
    """A walk of a real device that the snmpsim wheel ships (`linux-full-walk`,
    `winxp-full-walk`, `eaton-9PX-partial-walk`...)."""
    import snmpsim

    return Path(snmpsim.__file__).parent / "data" / "recorded" / f"{name}.snmprec"


def switch_records(ports: int = 2, uptime: int = 123456) -> list[tuple[str, int, object]]:
    """A small switch: system group, ifTable and ifXTable (about 30 OIDs for 2 ports)."""
    recs: list[tuple[str, int, object]] = [
        ("1.3.6.1.2.1.1.1.0", 4, "fieldwatch simulated switch"),
        ("1.3.6.1.2.1.1.2.0", 6, "1.3.6.1.4.1.8072.3.2.10"),
        ("1.3.6.1.2.1.1.3.0", 67, uptime),
        ("1.3.6.1.2.1.1.5.0", 4, "sim-switch"),
        ("1.3.6.1.2.1.2.1.0", 2, ports)]
    for i in range(1, ports + 1):
        oper = 1 if i % 2 else 2
        recs += [
            (f"1.3.6.1.2.1.2.2.1.1.{i}", 2, i),
            (f"1.3.6.1.2.1.2.2.1.2.{i}", 4, f"port{i}"),
            (f"1.3.6.1.2.1.2.2.1.7.{i}", 2, 1),
            (f"1.3.6.1.2.1.2.2.1.8.{i}", 2, oper),
            (f"1.3.6.1.2.1.2.2.1.13.{i}", 65, 3 * i),
            (f"1.3.6.1.2.1.2.2.1.14.{i}", 65, 5 * i),
            (f"1.3.6.1.2.1.2.2.1.19.{i}", 65, 7 * i),
            (f"1.3.6.1.2.1.2.2.1.20.{i}", 65, 11 * i),
            (f"1.3.6.1.2.1.31.1.1.1.1.{i}", 4, f"Gi0/{i}"),
            (f"1.3.6.1.2.1.31.1.1.1.6.{i}", 70, 10**12 + i),
            (f"1.3.6.1.2.1.31.1.1.1.10.{i}", 70, 2 * 10**12 + i),
            (f"1.3.6.1.2.1.31.1.1.1.15.{i}", 66, 1000)]
    return recs


def ups_records() -> list[tuple[str, int, object]]:
    """An RFC 1628 UPS running on battery with a low battery."""
    return [
        ("1.3.6.1.2.1.1.3.0", 67, 500),
        ("1.3.6.1.2.1.33.1.2.1.0", 2, 3),       # upsBatteryStatus batteryLow(3)
        ("1.3.6.1.2.1.33.1.2.2.0", 2, 240),     # upsSecondsOnBattery
        ("1.3.6.1.2.1.33.1.2.3.0", 2, 7),       # upsEstimatedMinutesRemaining
        ("1.3.6.1.2.1.33.1.2.4.0", 2, 42),      # upsEstimatedChargeRemaining
        ("1.3.6.1.2.1.33.1.2.7.0", 2, 31),      # upsBatteryTemperature
        ("1.3.6.1.2.1.33.1.4.1.0", 2, 5),       # upsOutputSource battery(5)
        ("1.3.6.1.2.1.33.1.4.4.1.5.1", 2, 55),  # upsOutputPercentLoad line 1
        ("1.3.6.1.2.1.33.1.6.1.0", 66, 1)]      # upsAlarmsPresent


def sensor_records() -> list[tuple[str, int, object]]:
    """ENTITY-SENSOR-MIB: a 45.5 °C sensor (precision 1), a fan in kRPM, a failed sensor."""
    rows = {  # index: (name, type, scale, precision, value, status)
        1: ("CPU temp", 8, 9, 1, 455, 1),
        2: ("Fan 1", 10, 10, 0, 3, 1),
        3: ("PSU temp", 8, 9, 0, 0, 3)}
    recs: list[tuple[str, int, object]] = [("1.3.6.1.2.1.1.3.0", 67, 700)]
    for i, (name, typ, scale, prec, value, status) in rows.items():
        recs += [(f"1.3.6.1.2.1.47.1.1.1.1.7.{i}", 4, name),
                 (f"1.3.6.1.2.1.99.1.1.1.1.{i}", 2, typ),
                 (f"1.3.6.1.2.1.99.1.1.1.2.{i}", 2, scale),
                 (f"1.3.6.1.2.1.99.1.1.1.3.{i}", 2, prec),
                 (f"1.3.6.1.2.1.99.1.1.1.4.{i}", 2, value),
                 (f"1.3.6.1.2.1.99.1.1.1.5.{i}", 2, status)]
    return recs
