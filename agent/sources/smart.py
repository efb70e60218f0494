"""Disk health from `smartctl --json` (smartmontools 7+): `smart.healthy{disk}` (1/0), and the
attributes that predict failure: reallocated / pending / uncorrectable sectors (ATA), wear,
spare and media errors (NVMe), temperature and power-on hours (both).

smartctl is run without a shell, with fixed arguments and a timeout, at most every `every`
seconds (SMART changes slowly; `--nocheck=standby` keeps sleeping disks asleep). With
`background=True` (what the agent uses) the run happens on a short-lived thread of its own and
its samples go out with the next cycle, so a slow disk never stretches a poll cycle (one run
takes ~50 ms per disk). Parsing is a pure function over the JSON document, tested with
recorded outputs of real disks.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fieldwatch.agent.sources.base import sample

from fieldwatch.clock import Clock
from fieldwatch.errors import SourceError, SourceUnsupported
from fieldwatch.wire import Sample

Runner = Callable[[Sequence[str], float], tuple[int, bytes]]

# ATA attribute id -> metric of its raw value
_ATA = {5: "smart.reallocated_sectors", 187: "smart.reported_uncorrectable",
        197: "smart.pending_sectors", 198: "smart.offline_uncorrectable",
        199: "smart.crc_errors_total"}
_NVME = {"critical_warning": "smart.critical_warning", "percentage_used": "smart.wear_percent",
         "available_spare": "smart.spare_percent", "media_errors": "smart.media_errors_total",
         "unsafe_shutdowns": "smart.unsafe_shutdowns_total"}
_FATAL = 0b011  # exit bits: command line did not parse / device open failed (or in standby)
_DEV = re.compile(r"/dev/[A-Za-z0-9_./-]+")
_TYPE = re.compile(r"[a-z0-9,+]+")


def run_command(argv: Sequence[str], timeout: float) -> tuple[int, bytes]:
    done = subprocess.run(list(argv), capture_output=True, timeout=timeout, check=False)
    return done.returncode, done.stdout


def _dig(doc: object, *keys: str) -> Any:
    """doc[k1][k2]... or None when any level is missing or not a mapping (odd smartctl builds)."""
    for k in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(k)
    return doc


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def parse_scan(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(device path, -d type) of each disk `smartctl --scan --json` found; odd names skipped."""
    out = []
    devices = _dig(doc, "devices")
    for d in devices if isinstance(devices, list) else []:
        name, typ = str(_dig(d, "name") or ""), str(_dig(d, "type") or "auto")
        if _DEV.fullmatch(name) and ".." not in name and _TYPE.fullmatch(typ):
            out.append((name, typ))
    return out


def parse_smart(doc: dict[str, Any], disk: str) -> list[Sample]:
    """Samples of one `smartctl --json --info --health --attributes` document."""
    out: list[Sample] = []
    passed = _dig(doc, "smart_status", "passed")
    exit_status = _dig(doc, "smartctl", "exit_status")
    if isinstance(passed, bool):
        out.append(sample("smart.healthy", 1 if passed else 0, disk=disk))
    elif isinstance(exit_status, int) and exit_status & 0b1000:  # bit 3: "DISK FAILING"
        out.append(sample("smart.healthy", 0, disk=disk))
    for metric, path in (("smart.temperature_celsius", ("temperature", "current")),
                         ("smart.power_on_hours", ("power_on_time", "hours"))):
        value = _dig(doc, *path)
        if _number(value):
            out.append(sample(metric, value, disk=disk))
    table = _dig(doc, "ata_smart_attributes", "table")
    if isinstance(table, list) and table:
        failing = 0
        for attr in table:
            attr_id, raw = _dig(attr, "id"), _dig(attr, "raw", "value")
            metric = _ATA.get(attr_id) if isinstance(attr_id, int) else None
            if metric and _number(raw):
                out.append(sample(metric, raw, disk=disk))
            if _dig(attr, "when_failed"):
                failing += 1
        out.append(sample("smart.attributes_failing", failing, disk=disk))
    for key, metric in _NVME.items():
        value = _dig(doc, "nvme_smart_health_information_log", key)
        if _number(value):
            out.append(sample(metric, value, disk=disk))
    return out


def _messages(doc: dict[str, Any]) -> str:
    msgs = _dig(doc, "smartctl", "messages")
    text = "; ".join(str(_dig(m, "string")) for m in msgs if _dig(m, "string")) \
        if isinstance(msgs, list) else ""
    return text or "no details"


class SmartSource:
    name = "smart"

    def __init__(self, clock: Clock, every: float = 3600.0, smartctl: str = "smartctl",
                 devices: Sequence[str] = (), timeout: float = 30.0,
                 run: Runner = run_command, which: Callable[[str], str | None] = shutil.which,
                 background: bool = False) -> None:
        self.clock, self.every, self.timeout = clock, every, timeout
        self.smartctl, self.devices = smartctl, list(devices)
        self._run, self._which = run, which
        self.background = background
        self._due = 0.0
        self._thread: threading.Thread | None = None
        self._done: tuple[list[Sample], SourceError | None] | None = None
        self._lock = threading.Lock()

    def _json(self, argv: list[str]) -> tuple[int, dict[str, Any]]:
        try:
            rc, out = self._run(argv, self.timeout)
        except subprocess.TimeoutExpired:
            raise SourceError(f"{' '.join(argv)} timed out after {self.timeout:g}s") from None
        try:
            doc = json.loads(out)
        except ValueError:
            raise SourceError(f"{' '.join(argv)} printed no JSON (exit {rc}); "
                              "smartmontools 7 or newer is needed") from None
        return rc, doc if isinstance(doc, dict) else {}

    def collect(self) -> Iterator[Sample]:
        now = self.clock.now()
        due = now >= self._due
        if due:
            self._due = now + self.every
        if not self.background:
            if due:
                yield from self.read()
            return
        with self._lock:
            done, self._done = self._done, None
        if due and (self._thread is None or not self._thread.is_alive()):
            self._thread = threading.Thread(target=self._read_into_done, daemon=True,
                                            name="fieldwatch-smart")
            self._thread.start()
        if done is not None:
            yield from done[0]
            if done[1] is not None:
                raise done[1]

    def _read_into_done(self) -> None:
        samples: list[Sample] = []
        error: SourceError | None = None
        try:
            for s in self.read():
                samples.append(s)
        except SourceError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - handed to the poller, which counts it
            error = SourceError(f"{type(exc).__name__}: {exc}")
        with self._lock:
            self._done = (samples, error)

    def read(self) -> Iterator[Sample]:
        """One run over every disk, now (blocking)."""
        exe = self._which(self.smartctl)
        if exe is None:
            raise SourceUnsupported(f"{self.smartctl} not found (install smartmontools)")
        if self.devices:
            disks = [(d, "auto") for d in self.devices]
        else:
            disks = parse_scan(self._json([exe, "--scan", "--json"])[1])
        errors = []
        for disk, typ in disks:
            rc, doc = self._json([exe, "--json", "--info", "--health", "--attributes",
                                  "--nocheck=standby", "-d", typ, disk])
            if rc & _FATAL:
                if "standby" not in _messages(doc).lower():  # a sleeping disk is no error
                    errors.append(f"{disk}: {_messages(doc)}")
                continue
            yield from parse_smart(doc, disk)
        if errors:
            raise SourceError("smartctl: " + " | ".join(errors))
