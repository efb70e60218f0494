"""What this machine is: OS, kernel, CPU model and cores, RAM, disks, NICs (MAC) and the
hardware serial where readable. Sent retained on start and daily; the collector keeps it in the
device record, where the device's lifetime history starts.

Every input is injected (psutil, the /sys and /proc roots, platform facts) so fixture trees
drive it; anything unreadable (DMI serials are root-only on most distributions) is left out.
"""

from __future__ import annotations

import platform
import socket
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

_DMI = {"vendor": "sys_vendor", "product": "product_name", "serial": "product_serial",
        "board_serial": "board_serial", "bios_version": "bios_version"}


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return text or None


def os_release(etc: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (_read(etc / "os-release") or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("ID", "VERSION_ID", "PRETTY_NAME"):
            out[key.lower()] = value.strip().strip('"')
    return out


def cpu_model(proc: Path) -> str | None:
    for line in (_read(proc / "cpuinfo") or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("model name", "Model", "Hardware", "cpu model"):
            return value.strip()
    return platform.processor() or None


def block_disks(sys_root: Path) -> list[dict[str, Any]]:
    """Whole disks from /sys/block (no partitions, loop or RAM disks) with model and size."""
    out = []
    block = sys_root / "block"
    if not block.is_dir():
        return out
    for dev in sorted(block.iterdir()):
        if dev.name.startswith(("loop", "ram", "zram", "sr", "fd", "dm-", "md")):
            continue
        sectors = _read(dev / "size")
        disk: dict[str, Any] = {"name": dev.name,
                                "bytes": int(sectors) * 512 if sectors and sectors.isdigit()
                                else None}
        for key, rel in (("model", "device/model"), ("serial", "device/serial"),
                         ("rotational", "queue/rotational")):
            value = _read(dev / rel)
            if value is not None:
                disk[key] = value == "1" if key == "rotational" else value
        out.append(disk)
    return out


def collect_inventory(ps: ModuleType = psutil, sys_root: Path = Path("/sys"),
                      proc_root: Path = Path("/proc"), etc: Path = Path("/etc")
                      ) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "os": platform.system(), "kernel": platform.release(), "arch": platform.machine(),
        "cpu_model": cpu_model(proc_root),
        "cpu_cores": ps.cpu_count(logical=False), "cpu_threads": ps.cpu_count(logical=True),
        "ram_bytes": ps.virtual_memory().total,
        "boot_time": round(ps.boot_time()),
    }
    rel = os_release(etc)
    if rel:
        facts["distro"] = rel
    dmi = {k: v for k, f in _DMI.items()
           if (v := _read(sys_root / "class/dmi/id" / f)) and v.lower() not in (
               "to be filled by o.e.m.", "default string", "none", "not specified")}
    if dmi:
        facts["hardware"] = dmi
    facts["disks"] = block_disks(sys_root)
    facts["filesystems"] = {p.mountpoint: p.fstype for p in ps.disk_partitions(all=False)}
    link = getattr(ps, "AF_LINK", -1)
    facts["nics"] = {nic: mac for nic, addrs in sorted(ps.net_if_addrs().items())
                     for a in addrs if a.family == link and (mac := a.address)
                     and mac != "00:00:00:00:00:00"}
    return facts
